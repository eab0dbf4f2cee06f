"""Follow-up queries built from what was read: names, what the question still asks, the bounds."""

from __future__ import annotations

from mindsearch._followup import follow_up_queries, names, residual

QUESTION = (
    "Who was the first president of the association which published Journal of Psychotherapy Integration?"
)
JOURNAL = (
    "Journal of Psychotherapy Integration",
    "The Journal of Psychotherapy Integration is a quarterly peer-reviewed academic journal published by "
    "the American Psychological Association on behalf of the Society for the Exploration of "
    "Psychotherapy Integration.",
)


def test_names_are_capitalised_runs_not_sentence_openers_numbers_or_dates() -> None:
    text = (
        "Some people think Hank Snow was born in 1914. On 7 December 1988 the Rank Organisation bought "
        "it. Big Hero 6 is a film by the University of Oxford."
    )
    assert names(text) == ["Hank Snow", "Rank Organisation", "Big Hero 6", "University of Oxford"]


def test_chinese_names_are_found_by_shape() -> None:
    found = names("《大白鲨》是一部1975年上映的美国惊悚电影，由史蒂文·斯皮尔伯格执导。")
    assert "《大白鲨》" in found and "史蒂文·斯皮尔伯格" in found


def test_residual_is_what_the_passage_does_not_hold() -> None:
    assert residual(QUESTION, " ".join(JOURNAL)) == "first president"
    assert residual("Where was #1 born?", "Paris") == "born", "an unresolved #k is not a word to search"


def test_a_follow_up_joins_each_new_name_with_what_is_still_asked() -> None:
    queries = follow_up_queries(QUESTION, [JOURNAL], [QUESTION], limit=3)
    assert queries[0] == "American Psychological Association first president"
    assert len(queries) <= 3 and all("first president" in q for q in queries)


def test_follow_ups_are_bounded_and_never_repeat_a_query() -> None:
    once = follow_up_queries(QUESTION, [JOURNAL], [QUESTION], limit=1)
    assert len(once) == 1
    assert follow_up_queries(QUESTION, [JOURNAL], [QUESTION, *once], limit=1) != once


def test_a_passage_that_holds_the_whole_question_needs_no_follow_up() -> None:
    passage = ("Jaws (film)", "Jaws is a 1975 thriller film directed by Steven Spielberg.")
    assert follow_up_queries("Who directed Jaws?", [passage], [], limit=3) == []


def test_a_parents_answer_comes_first() -> None:
    queries = follow_up_queries("Where was #1 born?", [JOURNAL], [], limit=3, answers=["Steven Spielberg"])
    assert queries[0] == "Steven Spielberg Where was born?"


def test_chinese_follow_ups_join_each_name_with_the_question() -> None:
    question = "《大白鲨》的导演出生在哪里？"
    passage = (
        "大白鲨 (电影)",
        "《大白鲨》是一部1975年上映的美国惊悚电影，由史蒂文·斯皮尔伯格执导，改编自彼得·本奇利1974年的同名小说。",
    )
    assert follow_up_queries(question, [passage], [question], limit=3) == [
        f"史蒂文·斯皮尔伯格 {question}",
        f"彼得·本奇利 {question}",
    ]

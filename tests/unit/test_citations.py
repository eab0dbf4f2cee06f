from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mindsearch._graph import Node, NodeState
from mindsearch._searcher import NodeResult
from mindsearch._writer import pool
from mindsearch.citations import MARKER, CitationStream, Registry, Source, renumber, strip_markers

JAWS = Source(
    "jaws", "Jaws", "https://example.org/jaws", ["Jaws is a 1975 film directed by Steven Spielberg."]
)
BORN = Source(
    "born", "Spielberg", "https://example.org/sp", ["Steven Spielberg was born in Cincinnati, Ohio, in 1946."]
)
NOLAN = Source(
    "nolan", "Nolan", "https://example.org/nolan", ["Christopher Nolan is a British film director."]
)


def run(
    pieces: list[str], sources: dict[int, Source], registry: Registry | None = None
) -> tuple[str, CitationStream]:
    stream = CitationStream(sources, registry or Registry(), min_support=0.3, attach_support=0.5)
    out = "".join(stream.feed(p) for p in pieces) + stream.finish()
    return out, stream


def test_numbers_follow_first_use_not_the_models_numbers() -> None:
    out, stream = run(
        ["Spielberg was born in Cincinnati [2]. ", "Jaws is a film by Spielberg [1]."], {1: JAWS, 2: BORN}
    )
    assert out == "Spielberg was born in Cincinnati [1]. Jaws is a film by Spielberg [2]."
    assert [r.title for r in stream.registry.references()] == ["Spielberg", "Jaws"]


def test_marker_split_across_pieces_and_moved_to_sentence_end() -> None:
    out, _ = run(["Jaws [", "1", "] was directed by Spielberg", "."], {1: JAWS})
    assert out == "Jaws was directed by Spielberg [1]."


def test_dangling_marker_is_dropped_and_reported() -> None:
    out, stream = run(["Jaws was directed by Spielberg [7]."], {1: JAWS})
    assert "[7]" not in out
    assert [(d.marker, d.reason) for d in stream.dropped] == [("[7]", "dangling")]
    assert out.endswith("[1].")  # the supporting source was attached instead


def test_unsupported_marker_is_dropped_and_best_source_attached() -> None:
    out, stream = run(["Spielberg was born in Cincinnati, Ohio [1]."], {1: JAWS, 2: BORN})
    assert [(d.marker, d.reason) for d in stream.dropped] == [("[1]", "unsupported")]
    assert out == "Spielberg was born in Cincinnati, Ohio [1]."
    assert stream.registry.references()[0].title == "Spielberg"


def test_no_citation_when_nothing_supports_the_sentence() -> None:
    out, _ = run(["Bananas are yellow fruit eaten worldwide."], {1: JAWS})
    assert out == "Bananas are yellow fruit eaten worldwide."


def test_decimal_points_and_brackets_that_are_not_markers_survive() -> None:
    out, _ = run(["The ratio is 3.5 [see below] today."], {1: JAWS})
    assert out == "The ratio is 3.5 [see below] today."


def test_comma_lists_and_chinese_sentences() -> None:
    zh = Source("zh", "大白鲨", "u", ["《大白鲨》是史蒂文·斯皮尔伯格执导的电影。"])
    out, _ = run(["《大白鲨》由斯皮尔伯格执导[1, 1]。"], {1: zh})
    assert out == "《大白鲨》由斯皮尔伯格执导 [1]。"


def test_sources_shared_across_nodes_get_one_number_in_order_of_first_use() -> None:
    nodes = [
        Node("a", "Who directed Jaws?", []),
        Node("b", "Where was Spielberg born?", []),
        Node("c", "Who is Nolan?", []),
    ]
    answers = {
        "a": ("Jaws was directed by Steven Spielberg [1].", [JAWS]),
        "b": ("Spielberg was born in Cincinnati [1]. Jaws is a 1975 film [2].", [BORN, JAWS]),
        "c": ("Christopher Nolan is a British film director [1].", [NOLAN]),
    }
    results = {}
    for node in nodes:
        node.state, node.answer = NodeState.DONE, answers[node.id][0]
        results[node.id] = NodeResult(node.answer, [], answers[node.id][1])
    draft = pool(nodes, results, {})
    assert [s.key for _, s in sorted(draft.sources.items())] == ["jaws", "born", "nolan"]
    assert draft.answers[1][1] == "Spielberg was born in Cincinnati [2]. Jaws is a 1975 film [1]."
    # the writer cites 3, 2, 1 (provisional); the reader sees 1, 2, 3 with no gaps
    registry = Registry()
    out, _ = run(
        [
            "Nolan is a British film director [3]. Spielberg was born in Cincinnati [2]. ",
            "Jaws is a 1975 film [1][9].",
        ],
        draft.sources,
        registry,
    )
    expected = "Nolan is a British film director [1]. Spielberg was born in Cincinnati [2]. "
    assert out == expected + "Jaws is a 1975 film [3]."
    assert [r.n for r in registry.references()] == [1, 2, 3]
    assert [r.title for r in registry.references()] == ["Nolan", "Spielberg", "Jaws"]


def test_renumber_and_strip() -> None:
    assert renumber("a [1][2] b [3]", {1: 5, 3: 1}) == "a [5] b [1]"
    assert strip_markers("a [1] b [2, 3].") == "a b."


def test_initials_and_abbreviations_do_not_end_a_sentence() -> None:
    source = Source(
        "r", "Reber", "u", ["Thomas V. Reber was a psychologist; Dr. Smith met him in the U.S. in 1990."]
    )
    out, _ = run(["Thomas V. Reber was a psychologist. Dr. Smith met him in 1990."], {1: source})
    assert out == "Thomas V. Reber was a psychologist [1]. Dr. Smith met him in 1990 [1]."


# --- real models' styles (issue 8) -------------------------------------------------------------------
PARIS = Source("paris", "Paris", "https://example.org/paris", ["Paris is the capital of France."])
BERLIN = Source("berlin", "Berlin", "https://example.org/berlin", ["Berlin is the capital of Germany."])
BALI = Source("bali", "巴黎", "https://example.org/zh-paris", ["巴黎是法国的首都，也是最大的城市。"])
BOLIN = Source("bolin", "柏林", "https://example.org/zh-berlin", ["柏林是德国的首都，位于施普雷河畔。"])


def test_marker_after_the_full_stop_cites_the_sentence_it_closes() -> None:
    out, stream = run(
        ["Paris is the capital of France. [1] Berlin is the capital of Germany. [2]"], {1: PARIS, 2: BERLIN}
    )
    assert out == "Paris is the capital of France [1]. Berlin is the capital of Germany [2]."
    assert stream.dropped == []


def test_marker_after_the_chinese_full_stop_cites_the_sentence_it_closes() -> None:
    out, stream = run(["巴黎是法国的首都。[1]柏林是德国的首都。[2]"], {1: BALI, 2: BOLIN})
    assert out == "巴黎是法国的首都 [1]。柏林是德国的首都 [2]。"
    assert stream.dropped == []


@pytest.mark.parametrize(
    "reply",
    [
        "Paris is the capital of France[[1]].",
        "Paris is the capital of France [[1]].",
        "Paris is the capital of France.[[1]]",
        "Paris is the capital of France【1】.",
        "Paris is the capital of France.【1】",
        "Paris is the capital of France [^1].",
        "Paris is the capital of France [citation:1].",
        "Paris is the capital of France ［1］.",
        "Paris is the capital of France [1](https://example.org/paris).",
        "Paris is the capital of France [1][1].",
        "Paris is the capital of France【1†source】.",
    ],
)
def test_every_marker_style_becomes_one_checked_marker(reply: str) -> None:
    out, stream = run([reply], {1: PARIS, 2: BERLIN})
    assert out == "Paris is the capital of France [1].", reply
    assert stream.dropped == []


@pytest.mark.parametrize(
    "reply", ["[1, 2]", "[1，2]", "[1-2]", "[1][2]", "[1、2]", "【1，2】", "[[1]][[2]]", "[^1][^2]", "[1–2]"]
)
def test_lists_and_ranges_of_sources(reply: str) -> None:
    out, stream = run(
        [f"Paris is the capital of France and Berlin is the capital of Germany {reply}."],
        {1: PARIS, 2: BERLIN},
    )
    assert out == "Paris is the capital of France and Berlin is the capital of Germany [1][2]."
    assert stream.dropped == []


def test_numbers_that_are_not_markers_stay_text() -> None:
    out, _ = run(["In [1990] and [2010-2014] prices rose [see below]."], {1: PARIS})
    assert out == "In [1990] and [2010-2014] prices rose [see below]."


def test_a_negated_claim_is_not_supported_by_a_positive_source() -> None:
    out, stream = run(["Jaws was not directed by Steven Spielberg [1]."], {1: JAWS})
    assert out == "Jaws was not directed by Steven Spielberg."
    assert [(d.marker, d.reason) for d in stream.dropped] == [("[1]", "unsupported")]


def test_a_positive_claim_is_not_supported_by_a_negated_source() -> None:
    denial = Source("d", "Jaws 2", "u", ["Steven Spielberg did not direct Jaws 2; Jeannot Szwarc did."])
    out, stream = run(["Steven Spielberg directed Jaws 2 [1]."], {1: denial})
    assert "[1]" not in out
    assert [d.reason for d in stream.dropped] == ["unsupported"]


def test_a_negation_elsewhere_in_the_source_does_not_flip_the_claim() -> None:
    source = Source(
        "j",
        "Jaws",
        "u",
        ["Jaws, which nobody at the studio expected to succeed, was directed by Steven Spielberg."],
    )
    out, _stream = run(["Jaws was directed by Steven Spielberg [1]."], {1: source})
    assert out == "Jaws was directed by Steven Spielberg [1]."


def test_chinese_negation() -> None:
    out, stream = run(["巴黎不是法国的首都[1]。"], {1: BALI})
    assert "[1]" not in out
    assert [d.reason for d in stream.dropped] == ["unsupported"]


@pytest.mark.parametrize(
    "sentence",
    [
        "The passages do not say who directed Jaws.",
        "The sources don't mention where Spielberg was born.",
        "There is no information about the director of Jaws in the provided sources.",
        "I could not find who directed Jaws.",
        "资料中没有提到《大白鲨》的导演。",
    ],
)
def test_a_sentence_saying_the_sources_do_not_answer_gets_no_citation(sentence: str) -> None:
    out, _ = run([sentence], {1: JAWS, 2: BORN})
    assert "[" not in out
    out, stream = run([sentence.rstrip(".。") + " [1]."], {1: JAWS, 2: BORN})
    assert "[1]" not in out
    assert [d.reason for d in stream.dropped] == ["unsupported"]


def test_a_name_the_source_lacks_makes_the_citation_unsupported() -> None:
    pizza = Source(
        "ph", "Pizza Hut", "u", ["Pizza Hut was founded in 1958 in Wichita, Kansas, by Dan and Frank Carney."]
    )
    caesars = Source(
        "lc",
        "Little Caesars",
        "u",
        ["Little Caesars was founded in 1959 in Garden City, Michigan, near Detroit."],
    )
    out, stream = run(["Pizza Hut was founded in 1958 in Detroit [1]."], {1: pizza, 2: caesars})
    assert out == "Pizza Hut was founded in 1958 in Detroit."
    assert [d.reason for d in stream.dropped] == ["unsupported"]


def test_a_number_the_source_lacks_makes_the_citation_unsupported() -> None:
    out, _stream = run(["Steven Spielberg was born in Cincinnati, Ohio, in 1947 [1]."], {1: BORN})
    assert "[1]" not in out


def test_a_bare_answer_is_judged_as_an_answer_to_the_question() -> None:
    women = Source(
        "w",
        "2011 FIFA Women's World Cup",
        "u",
        ["The United States played Japan in the final of the 2011 FIFA Women's World Cup."],
    )
    stream = CitationStream(
        {1: women},
        Registry(),
        min_support=0.3,
        attach_support=0.5,
        question="Who won the 2022 FIFA World Cup?",
    )
    out = stream.feed("The United States [1].") + stream.finish()
    assert out == "The United States."
    good = Source(
        "g",
        "2022 FIFA World Cup",
        "u",
        ["Argentina won the 2022 FIFA World Cup, beating France on penalties."],
    )
    stream = CitationStream(
        {1: good},
        Registry(),
        min_support=0.3,
        attach_support=0.5,
        question="Who won the 2022 FIFA World Cup?",
    )
    assert stream.feed("Argentina [1].") + stream.finish() == "Argentina [1]."


@pytest.mark.parametrize(
    "text",
    [
        "The answer is no. The passages are clear.",
        "It ended World War I. It was signed in 1919.",
        "Oranges contain vitamin C. It prevents scurvy.",
        "It was approved by the U.S. Congress. It took effect in 1920.",
    ],
)
def test_sentences_end_after_no_roman_numerals_and_vitamins(text: str) -> None:
    from mindsearch.citations import sentences

    assert len(sentences(text)) == 2, sentences(text)


@pytest.mark.parametrize(
    "text",
    [
        "Thomas V. Reber was a psychologist.",
        "Dr. Smith lives at No. 5 Main Street.",
        "The ratio is 3.5 today, e.g. in France.",
        "The Lord of the Rings is by J. R. R. Tolkien.",
        "He served in the U.S. Army for years.",
    ],
)
def test_abbreviations_initials_and_decimals_do_not_end_a_sentence(text: str) -> None:
    from mindsearch.citations import sentences

    assert sentences(text) == [text]


def test_markdown_structure_passes_through_unchanged() -> None:
    sources = {1: PARIS, 2: BERLIN}
    text = (
        "## Capitals\n\n"
        "- **Paris** is the capital of France [1]\n"
        "- Berlin is the capital of Germany. [2]\n\n"
        "1. First, Paris is the capital of France [2].\n"
        "2. Then Berlin.\n\n"
        "| City | Country |\n"
        "| --- | --- |\n"
        "| Paris | capital of France [1] |\n\n"
        "```python\n"
        "x = cities[1]  # not a citation.  Keep   spacing\n"
        "```\n"
        "Use `a[2]` in code.\n"
    )
    out, stream = run([text], sources)
    assert out == (
        "## Capitals\n\n"
        "- **Paris** is the capital of France [1]\n"
        "- Berlin is the capital of Germany [2].\n\n"
        "1. First, Paris is the capital of France [1].\n"
        "2. Then Berlin [2].\n\n"  # a short sentence found whole in a source gets it
        "| City | Country |\n"
        "| --- | --- |\n"
        "| Paris | capital of France [1] |\n\n"
        "```python\n"
        "x = cities[1]  # not a citation.  Keep   spacing\n"
        "```\n"
        "Use `a[2]` in code.\n"
    )
    assert [(d.marker, d.reason) for d in stream.dropped] == [("[2]", "unsupported")]


def test_no_duplicate_markers_and_no_leaked_brackets() -> None:
    out, _ = run(["Paris is the capital of France [1][[1]]【1】. [1]"], {1: PARIS})
    assert out == "Paris is the capital of France [1]."


REPLIES = [
    "Paris is the capital of France. [1] Berlin is the capital of Germany.[2]\n\n- Paris [1]\n- 3.5 [2]",
    "巴黎是法国的首都。[1]柏林是德国的首都。[2]他说：“是的。”[1]",
    "Dr. Smith met Thomas V. Reber in the U.S. in 1990 [[1]]. It ended World War I. It was 1919 [1, 2].",
    "| a | b [1] |\n| --- | --- |\n```\ncode [1].\n```\nUse `x[1]` now [2]. Is it? Yes!【2】",
]


@given(st.sampled_from(REPLIES), st.lists(st.integers(min_value=1, max_value=12), max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_chunking_of_a_stream_gives_the_same_output(reply: str, cuts: list[int]) -> None:
    sources = {1: PARIS, 2: BERLIN, 3: BALI}
    whole, _ = run([reply], sources)
    pieces, at = [], 0
    for size in cuts:
        pieces.append(reply[at : at + size])
        at += size
    pieces.append(reply[at:])
    chunked, _ = run(pieces, sources)
    assert chunked == whole


_PIECES = [
    "Paris is the capital of France",
    "Berlin",
    " ",
    "  ",
    ".",
    ". ",
    "。",
    "！",
    "?",
    "\n",
    "\n\n",
    "[1]",
    "[[2]]",
    "【1】",
    "[1, 2]",
    "[",
    "]",
    "(",
    "[1](https://e.org/x)",
    "`",
    "```",
    "|",
    "- ",
    "1. ",
    "Dr.",
    "3.5",
    "World War I.",
    "It",
    "巴黎是法国的首都",
    "e.g.",
    '"',
    "**",
]


@given(
    st.lists(st.sampled_from(_PIECES), max_size=30).map("".join),
    st.lists(st.integers(min_value=1, max_value=7), max_size=60),
)
@settings(max_examples=400, deadline=None)
def test_any_chunking_of_any_text_gives_the_same_output_and_loses_no_words(
    text: str, cuts: list[int]
) -> None:
    sources = {1: PARIS, 2: BERLIN, 3: BALI}
    whole, _ = run([text], sources)
    pieces, at = [], 0
    for size in cuts:
        pieces.append(text[at : at + size])
        at += size
    pieces.append(text[at:])
    chunked, _ = run(pieces, sources)
    assert chunked == whole
    # checking moves and removes markers, never words
    assert _words(whole) == _words(text)


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]+|[\u4e00-\u9fff]", MARKER.sub(" ", text))


JAWS_NOVEL = Source("n", "Jaws (novel)", "u", ["Jaws is a 1974 novel by Peter Benchley."])


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        ("Jaws is a novel by Peter Benchley [1], [2].", "Jaws is a novel by Peter Benchley [1]."),
        ("Jaws is a novel by Peter Benchley [2] and [1].", "Jaws is a novel by Peter Benchley [1]."),
        ("Jaws is a novel by Peter Benchley ([1], [2]).", "Jaws is a novel by Peter Benchley [1]."),
        (
            "According to [2], Jaws is a novel by Peter Benchley.",
            "According to [1], Jaws is a novel by Peter Benchley.",
        ),
        (
            "Jaws is a novel by Peter Benchley (Source: [2]).",
            "Jaws is a novel by Peter Benchley (Source: [1]).",
        ),
        (
            "Jaws is a novel by Peter Benchley, according to [2].",
            "Jaws is a novel by Peter Benchley, according to [1].",
        ),
        ("According to [1], Jaws is a novel by Peter Benchley.", "Jaws is a novel by Peter Benchley [1]."),
        (
            "Jaws is a novel by Peter Benchley [2](https://e.org/wiki/Jaws_(novel)).",
            "Jaws is a novel by Peter Benchley [1].",
        ),
        (
            "Jaws is a novel by Peter Benchley [2].\n\n[^2]: Jaws (novel)\n",
            "Jaws is a novel by Peter Benchley [1].\n\n",
        ),
        (
            "Jaws is a novel by Peter Benchley [2].\nSources: [1], [2]",
            "Jaws is a novel by Peter Benchley [1].\n",
        ),
        ("- **Author:** Peter Benchley wrote Jaws [2]", "- **Author:** Peter Benchley wrote Jaws [1]"),
        ("Jaws is a novel by Peter Benchley [[", "Jaws is a novel by Peter Benchley [1]"),
    ],
    ids=[
        "comma",
        "and",
        "parentheses",
        "according-to",
        "source-label",
        "according-to-at-the-end",
        "according-to-a-wrong-source",
        "link-with-parentheses",
        "footnote-definition",
        "sources-line",
        "bold-label",
        "cut-inside-a-marker",
    ],
)
def test_markers_that_cite_together_or_stand_as_words(reply: str, shown: str) -> None:
    out, _ = run([reply], {1: JAWS, 2: JAWS_NOVEL})
    assert out == shown

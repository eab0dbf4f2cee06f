"""The searcher's answer: short answers, dependent sub-questions, prompts too long, replies cut short."""

from __future__ import annotations

import re
from typing import Any

from mindsearch import MindSearch, Settings
from mindsearch._graph import SubQuestion
from mindsearch._short_answer import ShortAnswerLine, guess
from mindsearch.llm.base import ContextLengthError, ModelRequest, ReplyTruncated
from mindsearch.testing import MemoryEngine, ScriptedModel, doc_hit, kind_of

DOCS = [
    doc_hit("Jaws (film)", "Jaws is a 1975 American thriller film directed by Steven Spielberg."),
    doc_hit("Steven Spielberg", "Steven Spielberg was born in Cincinnati, Ohio, in 1946."),
]
PLAN = [
    SubQuestion(id="q1", question="Who directed Jaws?"),
    SubQuestion(id="q2", question="Where was #1 born?", depends_on=["q1"]),
]


def sub_question(request: ModelRequest) -> str:
    match = re.search(r"Sub-question: (.*)", request.text)
    return match.group(1) if match else ""


def answers(request: ModelRequest) -> Any:
    kind = kind_of(request)
    if kind == "queries":
        return '{"queries": ["jaws"]}'
    if kind == "answer":
        if "directed" in sub_question(request):
            return "Jaws was directed by Steven Spielberg [1].\nShort answer: Steven Spielberg"
        return "Steven Spielberg was born in Cincinnati, Ohio [1]."
    return "Steven Spielberg, who directed Jaws, was born in Cincinnati, Ohio [1][2]."


async def run(
    model: ScriptedModel, settings: Settings, plan: list[SubQuestion] | None = PLAN, docs: Any = DOCS
) -> list[Any]:
    engine = MindSearch(settings, model=model, engines=[MemoryEngine(docs)])
    events = [e async for e in engine.stream("Where was the director of Jaws born?", plan=plan)]
    await engine.aclose()
    return events


async def test_a_dependent_question_gets_the_parents_short_answer_and_says_so(settings: Settings) -> None:
    model = ScriptedModel(answers)
    events = await run(model, settings)
    first = next(e for e in events if e.type == "node_done" and e.node_id == "q1")
    assert first.short_answer == "Steven Spielberg"
    assert "Short answer" not in first.answer and first.answer == "Jaws was directed by Steven Spielberg [1]."
    rewritten = [e for e in events if e.type == "node_rewritten"]
    assert [(e.node_id, e.question, e.was) for e in rewritten] == [
        ("q2", "Where was Steven Spielberg born?", "Where was #1 born?")
    ]
    asked = [sub_question(r) for r in model.requests("answer")]
    assert "Where was Steven Spielberg born?" in asked
    assert events[-1].ok


async def test_without_a_short_answer_line_the_names_of_the_answer_are_used(settings: Settings) -> None:
    def reply(request: ModelRequest) -> Any:
        if kind_of(request) == "answer" and "directed" in sub_question(request):
            return "Jaws was directed by Steven Spielberg [1]."
        return answers(request)

    events = await run(ScriptedModel(reply), settings)
    assert any(
        e.type == "node_rewritten" and e.question == "Where was Steven Spielberg born?" for e in events
    )


def test_short_answer_line_is_taken_out_however_the_stream_is_cut() -> None:
    text = "Jaws was directed by Spielberg [1].\n\n**Short answer:** Steven Spielberg\n"
    for size in (1, 2, 3, 7, len(text)):
        line = ShortAnswerLine()
        shown = "".join(line.feed(text[i : i + size]) for i in range(0, len(text), size)) + line.finish()
        assert (shown, line.short) == ("Jaws was directed by Spielberg [1].\n\n", "Steven Spielberg")
    line = ShortAnswerLine()
    assert line.feed("Short stories are fun.\n") + line.finish() == "Short stories are fun.\n"
    line = ShortAnswerLine()
    line.feed("大白鲨由斯皮尔伯格执导[1]。\n简短答案：未知")
    line.finish()
    assert line.short == ""


def test_guessed_short_answers() -> None:
    assert guess("Jaws was directed by Steven Spielberg [1].", "Who directed Jaws?") == "Steven Spielberg"
    assert guess("Jaws was released in 1975 [1].", "When was Jaws released?") == "1975"
    assert guess("The passages do not say who directed Jaws.", "Who directed Jaws?") == ""
    assert guess("《大白鲨》由史蒂文·斯皮尔伯格执导[1]。", "《大白鲨》的导演是谁？") == "史蒂文·斯皮尔伯格"
    assert guess("资料中没有提到谁为《大白鲨》作曲。", "谁为《大白鲨》作曲？") == ""


async def test_a_prompt_too_long_is_tried_again_with_half_the_passages(settings: Settings) -> None:
    shown: list[int] = []

    def reply(request: ModelRequest) -> Any:
        if kind_of(request) == "answer":
            shown.append(len(re.findall(r"^\[\d+\] ", request.text, re.MULTILINE)))
            if len(shown) == 1:
                return ContextLengthError("This model's maximum context length is 4096 tokens")
            return "Jaws was directed by Steven Spielberg [1]."
        return answers(request)

    novel = doc_hit("Jaws (novel)", "Jaws is a 1974 novel by Peter Benchley; the film of Jaws followed.")
    plan = [SubQuestion(id="q1", question="Who directed Jaws?")]
    no_follow_up = settings.with_changes(follow_up_rounds=0)  # two passages match, no third is sought
    events = await run(ScriptedModel(reply), no_follow_up, plan, [*DOCS, novel])
    assert shown[0] == 2 and shown[1] == 1, "the second try shows half the passages"
    assert any(e.type == "error" and "did not fit" in e.message for e in events)
    node = next(e for e in events if e.type == "node_done")
    assert node.ok and node.answer == "Jaws was directed by Steven Spielberg [1]." and node.references


async def test_a_reply_cut_at_the_token_limit_is_kept_and_the_answer_is_not_complete(
    settings: Settings,
) -> None:
    def reply(request: ModelRequest) -> Any:
        if kind_of(request) == "write":
            return ["Steven Spielberg was born in Cincinnati, Ohio [2]. He directed", ReplyTruncated("cut")]
        return answers(request)

    events = await run(ScriptedModel(reply), settings)
    done = events[-1]
    assert "born in Cincinnati, Ohio" in done.answer and "He directed" in done.answer
    assert not done.ok
    assert any(e.type == "error" and e.stage == "answer" and "token limit" in e.message for e in events)


def base_reply(answer: str) -> Any:
    def reply(request: ModelRequest) -> Any:
        kind = kind_of(request)
        if kind == "queries":
            return '{"queries": ["jaws"]}'
        if kind == "answer":
            return answer
        return "Jaws was directed by Steven Spielberg [1]."

    return reply


async def test_an_answer_that_copies_a_prompt_example_is_discarded(settings: Settings) -> None:
    model = ScriptedModel(
        base_reply("The Kessler Works was founded in 1887 by Otto and Emil Kessler [1]."), style="base"
    )
    events = await run(model, settings, [SubQuestion(id="q1", question="Who directed Jaws?")])
    node = next(e for e in events if e.type == "node_done")
    assert not node.ok and "copied an example" in (node.error or "") and "Kessler" in (node.error or "")
    assert "Kessler" not in events[-1].answer and not events[-1].ok


async def test_an_answer_no_source_supports_fails_its_node(settings: Settings) -> None:
    model = ScriptedModel(base_reply("Jaws was directed by Christopher Nolan in 2010 [1]."))
    events = await run(model, settings, [SubQuestion(id="q1", question="Who directed Jaws?")])
    node = next(e for e in events if e.type == "node_done")
    assert not node.ok and node.error == "no source read supports the model's answer"
    model = ScriptedModel(base_reply("The passages do not say who directed Jaws."))
    events = await run(model, settings, [SubQuestion(id="q1", question="Who directed Jaws?")])
    node = next(e for e in events if e.type == "node_done")
    assert not node.ok and node.error == "the sources read do not answer this sub-question"

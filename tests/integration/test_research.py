"""Research mode (issue 14) over a real loopback OpenAI-compatible server: an outline of sections, each
researched as its own graph at the same time as the others, written with citations numbered 1..N across
the report, and a report that always ends within its wall budget, naming what it could not finish."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from mindsearch import MindSearch, Settings
from mindsearch import events as ev
from mindsearch._research import OutlineReply, check_outline, normalise
from mindsearch.llm.openai import OpenAIModel
from mindsearch.state import RunState
from mindsearch.testing import FakeOpenAIServer, MemoryEngine, doc_hit

TOPICS = {
    "Alder River": "The Alder River is 412 kilometres long and flows into the Grey Sea.",
    "Brenn Mountain": "Brenn Mountain rises 2,950 metres above sea level in the Tollen range.",
    "Corran Lake": "Corran Lake holds about 3 cubic kilometres of fresh water.",
    "Dunmore Forest": "Dunmore Forest covers 640 square kilometres of mixed woodland.",
}
DOCS = [doc_hit(title, text) for title, text in TOPICS.items()]
OUTLINE = {
    "title": "The Tollen region",
    "sections": [{"title": name, "questions": [f"What is known about {name}?"]} for name in TOPICS],
}
QUESTION = "Write a report on the geography of the Tollen region"


def text_of(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []))


def step(body: dict[str, Any]) -> str:
    text = text_of(body)
    fmt = json.dumps(body.get("response_format") or {})
    if "OutlineReply" in fmt or "outline" in text.split("\n", 1)[0] or "research report. You write" in text:
        return "outline"
    if "QueryList" in fmt or '"queries"' in text:
        return "queries"
    if "Sub-question:" in text:
        return "answer"
    if "summary of a research report" in text:
        return "summary"
    if "one section of a research report" in text:
        return "section"
    return "other"


def cited_sentences(block: str) -> list[str]:
    """The sentences that carry a marker, as the section and summary prompts quote them."""
    return re.findall(r"[A-Z][^\"\n\[\].?]*?\[\d+\]\.?", block)


def make_reply(slow_answers: float = 0.4, slow_topics: tuple[str, ...] = (), slow_for: float = 0.0) -> Any:
    async def reply(body: dict[str, Any]) -> Any:
        kind, text = step(body), text_of(body)
        if kind == "outline":
            return json.dumps(OUTLINE)
        if kind == "queries":
            asked = re.search(r"Sub-question: (.+)", text) or re.search(r"Question: (.+)", text)
            return json.dumps({"queries": [asked.group(1) if asked else "region"]})
        if kind == "answer":
            name = next(n for n in TOPICS if n in text.split("Passages", 1)[0])
            await asyncio.sleep(slow_for if name in slow_topics else slow_answers)
            return f"{TOPICS[name][:-1]} [1].\nShort answer: {name}"
        block = text.split("<<<", 1)[-1]
        sentences = cited_sentences(block)
        if kind == "section":
            return " ".join(sentences) or "Nothing is known."
        if kind == "summary":
            return " ".join(sentences[:2])
        return "ok"

    return reply


def engine_for(llm: FakeOpenAIServer, tmp_path: Path, **changes: Any) -> MindSearch:
    settings = Settings(
        llm="openai",
        base_url=f"{llm.url}/v1",
        model="fake",
        data_dir=tmp_path / "data",
        max_concurrency=4,
        follow_up_rounds=0,
        **changes,
    )
    return MindSearch(settings, model=OpenAIModel.from_settings(settings), engines=[MemoryEngine(DOCS)])


async def timed_run(engine: MindSearch, **options: Any) -> tuple[list[tuple[float, ev.Event]], float]:
    start = time.monotonic()
    seen: list[tuple[float, ev.Event]] = []
    async for event in engine.stream(QUESTION, options={"depth": "deep", **options}):
        seen.append((time.monotonic() - start, event))
    return seen, time.monotonic() - start


async def test_sections_are_researched_at_once_and_cited_one_to_n(tmp_path: Path) -> None:
    async with FakeOpenAIServer(make_reply()) as llm:
        async with engine_for(llm, tmp_path) as engine:
            seen, _ = await timed_run(engine)
    events = [e for _t, e in seen]
    state = RunState.from_events(events)
    assert state.finished and state.ok, (state.errors, state.answer)
    outline = [e for e in events if isinstance(e, ev.Outline)]
    assert len(outline) == 1 and [s.title for s in outline[0].sections] == list(TOPICS)
    # the four sections' searches overlap in time: each started before any of them was done
    node_started = {e.node_id: t for t, e in seen if isinstance(e, ev.NodeStarted)}
    node_done = {e.node_id: t for t, e in seen if isinstance(e, ev.NodeDone)}
    assert len(node_started) == 4 and max(node_started.values()) < min(node_done.values())
    answers = [r for r in llm.requests if step(r.body) == "answer"]
    assert len(answers) == 4 and max(r.started for r in answers) < min(r.ended for r in answers)
    # one numbering across the report: every marker names a reference, every reference is used
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", state.answer)}
    assert numbers == set(range(1, len(state.references) + 1)) and len(state.references) == 4
    assert [ref.n for ref in state.references] == [1, 2, 3, 4]
    # every section is written, under its heading, in outline order, then the summary
    assert [s.state for s in state.sections.values()] == ["done"] * 5
    assert list(state.sections)[-1] == "summary"
    headings = re.findall(r"^## (.+)$", state.answer, re.M)
    assert headings == [*TOPICS, "Summary"]
    assert state.answer.startswith("# The Tollen region")
    for name, fact in TOPICS.items():
        assert fact[:-1] in state.sections[f"s{list(TOPICS).index(name) + 1}"].text
    # the streamed pieces (answer_delta) are the report, for clients that know nothing of sections
    streamed = "".join(e.text for e in events if isinstance(e, ev.AnswerDelta)).strip()
    assert streamed == state.answer


async def test_a_slow_model_ends_within_the_budget_naming_incomplete_sections(tmp_path: Path) -> None:
    budget = 6.0
    reply = make_reply(slow_answers=0.1, slow_topics=("Corran Lake", "Dunmore Forest"), slow_for=60.0)
    async with FakeOpenAIServer(reply) as llm:
        async with engine_for(llm, tmp_path) as engine:
            seen, seconds = await timed_run(engine, research_timeout=budget)
    events = [e for _t, e in seen]
    state = RunState.from_events(events)
    assert seconds < budget + 1.5, seconds
    assert state.finished and not state.ok
    done = {s.title: s.state for s in state.sections.values() if s.kind == "section"}
    assert done == {
        "Alder River": "done",
        "Brenn Mountain": "done",
        "Corran Lake": "incomplete",
        "Dunmore Forest": "incomplete",
    }
    assert "Incomplete sections" in state.answer
    assert "Corran Lake; Dunmore Forest" in state.answer
    # what finished is still cited, and the numbers still run 1..N with no dangling marker
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", state.answer)}
    assert numbers == set(range(1, len(state.references) + 1)) and len(state.references) == 2


async def test_a_model_without_an_outline_gets_the_standard_one(tmp_path: Path) -> None:
    base = make_reply(slow_answers=0.0)

    async def reply(body: dict[str, Any]) -> Any:
        return "I would love to help with that report!" if step(body) == "outline" else await base(body)

    async with FakeOpenAIServer(reply) as llm:
        async with engine_for(llm, tmp_path) as engine:
            seen, _ = await timed_run(engine)
    outline = next(e for _t, e in seen if isinstance(e, ev.Outline))
    assert outline.note == "used a standard outline" and "repair" in outline.recovered_from
    assert [s.title for s in outline.sections] == ["Overview", "Key facts", "Recent developments"]
    assert len([r for r in llm.requests if step(r.body) == "outline"]) == 2  # one repair round


@pytest.mark.parametrize(
    "reply",
    [
        {"title": "T", "sections": [{"title": "A", "questions": ["a?"]}, "B", {"heading": "C"}]},
        [{"title": "A", "sub_questions": [{"question": "a?"}]}, {"name": "B"}, {"section": "C"}],
        {"outline": [{"title": "A", "queries": "a?"}, {"title": "B"}, {"title": "C"}]},
    ],
)
def test_outline_reply_styles_are_read(reply: Any) -> None:
    outline = OutlineReply.model_validate(normalise(reply, "the topic"))
    sections = check_outline(outline, max_sections=8, per_section=3)
    assert [title for title, _q in sections] == ["A", "B", "C"]
    assert sections[0][1] == ["a?"] and sections[1][1] == ["B: the topic"]


def test_an_outline_of_two_sections_is_refused_and_a_long_one_cut() -> None:
    two = OutlineReply.model_validate(normalise({"sections": ["A", "B"]}, "t"))
    with pytest.raises(ValueError, match="needs 3"):
        check_outline(two, max_sections=8, per_section=3)
    ten = OutlineReply.model_validate(normalise({"sections": [f"Part {i}" for i in range(10)]}, "t"))
    assert len(check_outline(ten, max_sections=5, per_section=3)) == 5


async def test_ask_research_writes_the_report_with_its_references(tmp_path: Path) -> None:
    """`mindsearch ask --research --output report.md`: the CLI runs research mode (depth deep) and
    writes the report, its headings and its reference list."""
    import sys

    async with FakeOpenAIServer(make_reply(slow_answers=0.0)) as llm:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mindsearch",
            "ask",
            "--research",
            QUESTION,
            *llm.cli_flags(),
            "--engine",
            "local",
            "--output",
            str(tmp_path / "report.md"),
            "--data-dir",
            str(tmp_path / "data"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await process.communicate()
        outlines = [r for r in llm.requests if step(r.body) == "outline"]
    assert outlines, err.decode()[-2000:]
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# The Tollen region") and "## Alder River" in report, report


async def test_a_bug_late_in_the_report_keeps_what_was_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the sections were written ends the run with them, cited, and ok false."""
    from mindsearch._research import Research

    async def broken(self: Research, title: str, sections: list[Any]) -> None:
        raise RuntimeError("the summary broke")

    monkeypatch.setattr(Research, "_summary", broken)
    async with FakeOpenAIServer(make_reply(slow_answers=0.0)) as llm:
        async with engine_for(llm, tmp_path) as engine:
            seen, _ = await timed_run(engine)
    state = RunState.from_events([e for _t, e in seen])
    assert state.finished and not state.ok
    assert any("the summary broke" in e.message for e in state.errors)
    assert "## Alder River" in state.answer and "[1]" in state.answer and len(state.references) == 4


async def test_a_standard_outline_by_setting_asks_the_model_for_none(tmp_path: Path) -> None:
    """MINDSEARCH_RESEARCH_OUTLINE=standard (what auto chooses for base-style models such as the
    embedded one): no outline request, the standard sections, each researched and written (here from
    nothing: the fake model knows none of the standard sub-questions)."""
    async with FakeOpenAIServer(make_reply(slow_answers=0.0)) as llm:
        async with engine_for(llm, tmp_path, research_outline="standard") as engine:
            seen, _ = await timed_run(engine)
    outline = next(e for _t, e in seen if isinstance(e, ev.Outline))
    assert outline.note == "used a standard outline" and outline.title == QUESTION
    assert not [r for r in llm.requests if step(r.body) == "outline"]
    done = [e for _t, e in seen if isinstance(e, ev.SectionDone) and e.kind == "section"]
    assert [e.section_id for e in done] == ["s1", "s2", "s3"]
    assert isinstance(seen[-1][1], ev.Done)


@pytest.mark.parametrize(
    ("question", "language", "sections"),
    [
        (
            "Write a short report on Pizza Hut: its founding, its founders and its history",
            "en",
            [
                ("Founding", "Pizza Hut founding"),
                ("Founders", "Pizza Hut founders"),
                ("History", "Pizza Hut history"),
            ],
        ),
        (
            "Tell me about Pizza Hut: its history and its owners",
            "en",
            [
                ("Overview", "What is Pizza Hut?"),
                ("History", "Pizza Hut history"),
                ("Owners", "Pizza Hut owners"),
            ],
        ),
        (
            "写一份关于长江的报告",
            "zh",
            [("概述", "长江是什么？"), ("要点", "长江 事实与数据"), ("最新进展", "长江 最新进展")],
        ),
        ("长江：源头、流域和经济", "zh", [("源头", "长江源头"), ("流域", "长江流域"), ("经济", "长江经济")]),
    ],
)
def test_the_standard_outline_follows_the_topic_and_the_aspects_a_question_names(
    question: str, language: Any, sections: list[tuple[str, str]]
) -> None:
    from mindsearch._research import standard_outline

    assert standard_outline(question, language, 5) == [(title, [q]) for title, q in sections]


async def test_the_token_budget_stops_the_searching_and_the_report_still_ends(tmp_path: Path) -> None:
    """MINDSEARCH_RESEARCH_TOKENS spent (here by the outline itself): searching stops, every section is
    written from what it has, and the report ends, naming why in an error and its sections as incomplete."""
    async with FakeOpenAIServer(make_reply(slow_answers=2.0)) as llm:
        async with engine_for(llm, tmp_path, research_tokens=1) as engine:
            seen, seconds = await timed_run(engine)
    state = RunState.from_events([e for _t, e in seen])
    assert state.finished and not state.ok and seconds < 10
    assert any("MINDSEARCH_RESEARCH_TOKENS" in e.message for e in state.errors)
    assert [s.state for s in state.sections.values()] == ["incomplete"] * 4
    assert "Incomplete sections: Alder River; Brenn Mountain; Corran Lake; Dunmore Forest." in state.answer

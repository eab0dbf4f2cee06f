"""Research mode (``depth: "deep"``): an outline, one DAG of sub-questions per section, a cited report.

The planner first writes an outline (a title and 3 to ``research_sections`` sections, each with its own
sub-questions) as JSON, validated like a plan, with one repair round and then a standard outline for a
model that cannot write one. Each section is researched as its own graph on the run's scheduler
(``_Run._schedule``); the sections run at once, their node searches sharing one concurrency cap
(``max_concurrency``), and the run's cache, page budget (``research_pages``) and sources. Sections are
written in outline order, each as soon as its research is done, streamed through the citation checks
with one ``Registry``, so the report's citations are numbered 1..N across all sections; then a summary,
then one reference list.

It always ends: searching stops at ``research_search_share`` of ``research_timeout`` (or when the
``research_tokens`` budget is spent), each section is written from what it has within the time left,
with no model call when there is none, and the report names its incomplete sections.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import _telemetry as telemetry
from . import events as ev
from ._graph import NodeState, QuestionGraph, SubQuestion
from ._planner import REPAIRED, short_error
from ._prompts import echoes_examples, render
from ._text import quoted, similarity
from ._writer import Draft, Writer, pool
from .citations import Dropped, Registry, strip_markers
from .citations.support import is_non_answer
from .llm.base import TRUNCATED, LLMError, Message, ReplyTruncated, extract_json

if TYPE_CHECKING:
    from ._run import _Run

MIN_SECTIONS = 3
STANDARD_OUTLINE = "used a standard outline"  # the outline event's note when the model gave none
_MARGIN = 0.5  # seconds kept at the very end of the wall budget for the reference list and ``done``
_CITED = re.compile(r"\[\d+\]")


class SectionReply(BaseModel):
    """One section as the model wrote it (after ``normalise``)."""

    model_config = ConfigDict(extra="ignore")
    title: str = Field(min_length=1, max_length=200)
    questions: list[str] = Field(min_length=1, max_length=20)


class OutlineReply(BaseModel):
    """The outline as the model writes it: ``{"title": ..., "sections": [{"title", "questions"}]}``."""

    model_config = ConfigDict(extra="ignore")
    title: str = Field(min_length=1, max_length=300)
    sections: list[SectionReply] = Field(min_length=1, max_length=20)


_TITLE_KEYS = ("title", "heading", "name", "section", "section_title", "topic", "report_title")
_QUESTION_KEYS = ("questions", "sub_questions", "subquestions", "sub-questions", "queries", "subquestion")
_SECTION_KEYS = ("sections", "outline", "chapters", "parts")


def normalise(data: Any, question: str) -> dict[str, Any]:
    """The reply styles real models use, made into the one shape ``OutlineReply`` validates.

    A bare list of sections, sections as plain strings, ``sub_questions`` for ``questions``,
    questions as ``{"question": ...}`` objects and a missing title are all accepted; a section without
    questions is searched by its title and the topic.
    """
    if isinstance(data, list):
        data = {"sections": data}
    if not isinstance(data, dict):
        raise ValueError("the outline is not a JSON object")
    title = next((data[k] for k in _TITLE_KEYS if isinstance(data.get(k), str) and data[k].strip()), question)
    raw_sections = next((data[k] for k in _SECTION_KEYS if isinstance(data.get(k), list)), None)
    if raw_sections is None:
        raise ValueError('the outline has no "sections" list')
    sections = []
    for raw in raw_sections:
        if isinstance(raw, str):
            raw = {"title": raw}
        if not isinstance(raw, dict):
            raise ValueError("a section is neither an object nor a title")
        name = next((raw[k] for k in _TITLE_KEYS if isinstance(raw.get(k), str) and raw[k].strip()), "")
        asked = next((raw[k] for k in _QUESTION_KEYS if k in raw), None)
        if isinstance(asked, str):
            asked = [asked]
        questions = []
        for item in asked if isinstance(asked, list) else []:
            if isinstance(item, dict):
                item = next((item[k] for k in ("question", "q", "text", "query") if k in item), "")
            if isinstance(item, str) and any(char.isalnum() for char in item):
                questions.append(" ".join(item.split())[:500])
        if name and not questions:
            questions = [f"{name}: {question}"[:500]]
        sections.append({"title": " ".join(str(name).split())[:200], "questions": questions})
    return {"title": " ".join(str(title).split())[:300], "sections": sections}


def check_outline(
    outline: OutlineReply, *, max_sections: int, per_section: int
) -> list[tuple[str, list[str]]]:
    """The sections to research: at most ``max_sections`` (the rest is cut, not an error), each with at
    most ``per_section`` distinct sub-questions; fewer than 3 distinct sections is an error to repair."""
    sections: list[tuple[str, list[str]]] = []
    for section in outline.sections:
        title = section.title.strip()
        if any(similarity(title, seen) >= 0.9 for seen, _ in sections):
            continue
        unique: list[str] = []
        for q in section.questions:
            if q.strip() and all(similarity(q, seen) < 0.9 for seen in unique):
                unique.append(q.strip())
        if title and unique:
            sections.append((title, unique[:per_section]))
    if len(sections) < MIN_SECTIONS:
        raise ValueError(
            f"the outline has {len(sections)} distinct sections with questions; it needs {MIN_SECTIONS} "
            f"to {max_sections}"
        )
    return sections[:max_sections]


_ASK = re.compile(
    r"^(please\s+)?(write|give|make|produce|prepare|create|compose)\s+(me\s+)?(an?\s+)?"
    r"((short|brief|long|detailed|full|quick)\s+)?(research\s+)?"
    r"(report|overview|summary|essay|article|survey|review|introduction)\s+(on|about|of|into)\s+"
    r"|^(tell me about|research|explain|describe|summari[sz]e|an? (report|overview) (on|of))\s+",
    re.IGNORECASE,
)
_ASK_ZH = re.compile(r"^(请)?(写|给我|帮我写|做)?(一份|一篇|一个)?(关于)?|(的)?(报告|综述|概述|调研|介绍)$")
_QUESTION_WORD = r"(what|which|who|whom|whose|where|when|why|how|is|are|was|were|do|does|did|can)\b"
_POSSESSIVE = re.compile(r"^(its|their|the|his|her|a|an)\s+", re.IGNORECASE)


def topic_and_aspects(question: str, language: Literal["en", "zh"]) -> tuple[str, list[str]]:
    """What a report is about and the aspects it names: "Write a short report on Pizza Hut: its founding,
    its founders and its history" is ("Pizza Hut", ["founding", "founders", "history"])."""
    text = " ".join(question.split()).strip().rstrip("?？.。!！")
    text = (_ASK_ZH.sub("", text) if language == "zh" else _ASK.sub("", text)).strip()
    topic, _, rest = re.split(r"[:：]", text, maxsplit=1)[0], "", ""
    if re.search(r"[:：]", text):
        topic, rest = (part.strip() for part in re.split(r"[:：]", text, maxsplit=1))
    aspects = []
    for part in re.split(r",|，|、|;|；|\band\b|\bas well as\b|和|及|以及|与", rest):
        aspect = _POSSESSIVE.sub("", part.strip()).strip()
        if aspect and any(char.isalnum() for char in aspect):
            aspects.append(aspect[:100])
    return (topic.strip() or question)[:300], aspects


def standard_outline(question: str, language: Literal["en", "zh"], limit: int) -> list[tuple[str, list[str]]]:
    """An outline by rule: a section per aspect the question names ("its founding, its founders and its
    history"), after an overview when there are fewer than three; else the sections any topic has
    (prompts/common/outline_fallback): overview, key facts, recent developments. No model call."""
    topic, aspects = topic_and_aspects(question, language)
    is_question = re.search(r"[?？]\s*$", question) or re.match(_QUESTION_WORD, question.strip(), re.I)
    what_is = f"{topic}是什么？" if language == "zh" else f"What is {topic}?"
    overview = question.strip() if is_question else what_is  # a question is its own overview
    text = render("outline_fallback", style="common", language=language, topic=topic, overview=overview)[
        0
    ].content
    standard = []
    for line in text.splitlines():
        name, _, asked = line.partition("|")
        if name.strip() and asked.strip():
            standard.append((name.strip(), [asked.strip()[:500]]))
    if len(aspects) < 2:
        return standard[:limit]
    joiner = "" if language == "zh" else " "
    named = [(aspect[:1].upper() + aspect[1:], [f"{topic}{joiner}{aspect}"[:500]]) for aspect in aspects]
    return ([standard[0]] if len(named) < MIN_SECTIONS else []) + named[: limit - (len(named) < MIN_SECTIONS)]


@dataclass
class _Section:
    id: str
    title: str
    questions: list[str]
    run: _Run
    researched: asyncio.Event = field(default_factory=asyncio.Event)
    text: str = ""
    ok: bool = True
    problems: list[str] = field(default_factory=list)  # why it is incomplete

    @property
    def node_ids(self) -> list[str]:
        return [f"{self.id}q{i}" for i in range(1, len(self.questions) + 1)]


class Research:
    """One research-mode run, on the ``_Run`` that started it (its context, model, emit and clock)."""

    def __init__(self, run: _Run) -> None:
        assert run.ctx is not None
        self.parent = run
        self.ctx = run.ctx
        self.settings = run.settings
        self.emit = run.emit
        s = self.settings
        self.deadline = run.started + s.research_timeout
        self.search_until = run.started + s.research_timeout * s.research_search_share
        self.stop_reason = ""  # why searching stopped early: the time or the token budget
        self.registry = Registry()
        self.parts: list[str] = []  # the report as streamed (``answer_delta``), for ``done.answer``
        self.problems: list[str] = []  # why the report is incomplete, beyond its sections
        self.labels = _labels(self.ctx.language)

    # -- the whole report ----------------------------------------------------------------------------
    async def run(self) -> None:
        """The report; a bug part-way ends it with what was already streamed, cited, and ``ok`` false."""
        try:
            await self._report()
        except Exception as exc:
            if self.emit.done:
                raise
            self.emit(ev.Error(stage="run", message=f"the report stopped: {type(exc).__name__}: {exc}"[:500]))
            references = self.registry.references()
            self.emit(ev.References(references=references))
            seconds = round(time.monotonic() - self.parent.started, 3)
            answer = "".join(self.parts).strip()
            self.emit(ev.Done(answer=answer, references=references, nodes=[], seconds=seconds, ok=False))

    async def _report(self) -> None:
        s, ctx = self.settings, self.ctx
        ctx.pages_left = s.research_pages
        title, sections = await self._outline()
        slots = asyncio.Semaphore(s.max_concurrency)
        for section in sections:
            section.run.slots = slots
        tasks = [asyncio.create_task(self._research(section)) for section in sections]
        watcher = asyncio.create_task(self._watch(tasks))
        try:
            self._say(f"# {title}\n\n")
            for section in sections:
                await section.researched.wait()
                await self._write_section(section, len(sections) - sections.index(section))
        finally:
            for task in [*tasks, watcher]:
                task.cancel()
            await asyncio.gather(*tasks, watcher, return_exceptions=True)
        await self._summary(title, sections)
        incomplete = [section.title for section in sections if not section.ok]
        if incomplete:
            note = self.labels["incomplete"].replace("$sections", "; ".join(incomplete))
            self.emit(ev.Error(stage="run", message=note[:500]))
            self._say(f"_{note}_\n")
        references = self.registry.references()
        self.emit(ev.References(references=references))
        nodes = [
            ev.PlannedNode(id=n.id, question=n.question, depends_on=n.depends_on)
            for section in sections
            for n in section.run.graph.nodes
        ]
        self.emit(
            ev.Done(
                answer="".join(self.parts).strip(),
                references=references,
                nodes=nodes,
                seconds=round(time.monotonic() - self.parent.started, 3),
                ok=not incomplete and not self.problems and not self.stop_reason,
            )
        )

    def _say(self, text: str) -> None:
        """Report text outside any section (the title, headings, the note on incomplete sections)."""
        self.parts.append(text)
        self.emit(ev.AnswerDelta(text=text))

    # -- the outline ---------------------------------------------------------------------------------
    async def _outline(self) -> tuple[str, list[_Section]]:
        """The outline, as an ``outline`` event and sections ready to research; never fails."""
        question = self.parent.question
        note, recovered_from = "", ""
        mode = self.settings.research_outline
        if mode == "standard" or (mode == "auto" and self.ctx.style == "base"):
            why = "MINDSEARCH_RESEARCH_OUTLINE is standard" if mode == "standard" else "a base-style model"
            return self._sections(question, self._standard_outline(), STANDARD_OUTLINE, why)
        try:
            with telemetry.step("plan"):
                title, chosen, note, recovered_from = await asyncio.wait_for(
                    self._ask_outline(), max(self.search_until - time.monotonic(), 0.01)
                )
        except asyncio.TimeoutError:
            title, chosen, recovered_from = "", None, "the outline was not written in time"
        except LLMError as exc:
            title, chosen, recovered_from = "", None, f"the model failed: {exc}"
        if chosen is None:
            title, chosen, note = question, self._standard_outline(), STANDARD_OUTLINE
        return self._sections(title, chosen, note, recovered_from)

    def _sections(
        self, title: str, chosen: list[tuple[str, list[str]]], note: str, recovered_from: str
    ) -> tuple[str, list[_Section]]:
        """The outline's sections, each with its own graph; told in the ``outline`` event."""
        sections = []
        for index, (name, questions) in enumerate(chosen, start=1):
            section_run = self._section_run()
            section = _Section(f"s{index}", name, questions, section_run)
            section_run.fixed_plan = [
                SubQuestion(id=node_id, question=q)
                for node_id, q in zip(section.node_ids, questions, strict=True)
            ]
            section_run.graph = QuestionGraph(len(questions))
            sections.append(section)
        self.emit(
            ev.Outline(
                title=title,
                sections=[
                    ev.OutlineSection(id=x.id, title=x.title, questions=x.questions, node_ids=x.node_ids)
                    for x in sections
                ],
                note=note,
                recovered_from=recovered_from[:500],
            )
        )
        return title, sections

    async def _ask_outline(self) -> tuple[str, list[tuple[str, list[str]]] | None, str, str]:
        """The model's outline after at most one repair round: (title, sections or None, note, problem)."""
        s, ctx, question = self.settings, self.ctx, self.parent.question
        messages = render(
            "outline",
            style=ctx.style,
            language=ctx.language,
            question=question,
            history=self.parent.history_text,
            min_sections=str(MIN_SECTIONS),
            max_sections=str(s.research_sections),
            per_section=str(s.research_nodes_per_section),
        )
        first_error = ""
        for attempt in range(2):
            reply = await ctx.model.complete(messages, schema=OutlineReply, max_tokens=s.max_tokens)
            try:
                outline = OutlineReply.model_validate(normalise(extract_json(reply), question))
                sections = check_outline(
                    outline, max_sections=s.research_sections, per_section=s.research_nodes_per_section
                )
                said = " ".join([outline.title, *(f"{t} {' '.join(q)}" for t, q in sections)])
                copied = echoes_examples(
                    said, question, name="outline", style=ctx.style, language=ctx.language
                )
                if copied is not None:
                    raise ValueError(f"the outline copied an example from its prompt ({copied})")
            except (ValueError, ValidationError) as exc:
                error = short_error(exc)
                if attempt == 0:
                    first_error = error
                    messages = [
                        *messages,
                        Message("assistant", reply),
                        *render("repair", style=ctx.style, language=ctx.language, error=error),
                    ]
                    continue
                return "", None, "", f"invalid outline, also after a repair round: {error}"
            return outline.title, sections, (REPAIRED if first_error else ""), first_error
        raise AssertionError("unreachable")

    def _standard_outline(self) -> list[tuple[str, list[str]]]:
        """The outline by rule (``standard_outline``), for a model that writes no usable one."""
        return standard_outline(self.parent.question, self.ctx.language, self.settings.research_sections)

    def _section_run(self) -> _Run:
        """A graph of its own for one section, on the run's context (cache, pages, sources, emit)."""
        from ._run import _Run

        parent = self.parent
        child = _Run(parent.engine, parent.settings, parent.question, [], parent.emit, parent.started)
        child.ctx, child.history_text, child.depth = parent.ctx, "", "normal"
        return child

    # -- research ------------------------------------------------------------------------------------
    async def _research(self, section: _Section) -> None:
        """Run the section's graph; stopped by ``_watch``, it keeps what finished."""
        self.emit(ev.SectionStarted(section_id=section.id, title=section.title))
        try:
            await section.run._schedule()
        except asyncio.CancelledError:
            if not self.stop_reason:
                raise
            section.run._stop_unfinished(
                f"{section.id}: searching stopped ({self.stop_reason})", f"stopped: {self.stop_reason}"
            )
        except Exception as exc:  # a bug in one section's scheduling must not take the report down
            section.run._stop_unfinished(f"{section.id}: {type(exc).__name__}: {exc}"[:500], "stopped")
        finally:
            section.researched.set()

    async def _watch(self, tasks: list[asyncio.Task[None]]) -> None:
        """Stop the searches at the end of their share of the wall time, or when the tokens are spent."""
        budget = self.settings.research_tokens
        while not all(task.done() for task in tasks):
            left = self.search_until - time.monotonic()
            if left <= 0:
                self.stop_reason = (
                    f"the {self.settings.research_timeout:g} s budget of the report "
                    "(MINDSEARCH_RESEARCH_TIMEOUT) left no more time to search"
                )
            elif budget and telemetry.tokens_used() >= budget:
                self.stop_reason = f"the report's {budget} tokens were spent (MINDSEARCH_RESEARCH_TOKENS)"
            if self.stop_reason:
                for task in tasks:
                    task.cancel()
                return
            await asyncio.wait(tasks, timeout=min(left, 0.25))

    # -- writing -------------------------------------------------------------------------------------
    def _writer(self) -> Writer:
        def dropped(d: Dropped) -> None:
            self.emit(ev.CitationDropped(marker=d.marker, reason=d.reason))  # type: ignore[arg-type]

        ctx = self.ctx
        writer = Writer(ctx.model, self.settings, style=ctx.style, language=ctx.language, on_drop=dropped)
        writer.registry = self.registry  # one numbering across the whole report
        return writer

    def _time_for(self, parts_left: int) -> float:
        """Seconds one more piece of writing may take, so the pieces after it still get their share."""
        return max(self.deadline - _MARGIN - time.monotonic(), 0.0) / max(parts_left, 1)

    async def _write_section(self, section: _Section, sections_left: int) -> None:
        """Write one section from its finished sub-questions, streamed and cited; never raises."""
        ctx, run = self.ctx, section.run
        self._say(f"## {section.title}\n\n")
        failed = [n for n in run.graph.nodes if n.state is NodeState.FAILED]
        if failed or run.incomplete:
            section.ok = False
            section.problems.append(
                f"{len(failed)} of {len(run.graph)} sub-questions unanswered"
                if failed
                else "; ".join(run.incomplete)
            )
        draft = pool(run.graph.nodes, run.results, ctx.sources)
        out = _SectionOut(self, section)
        writer = self._writer()
        if not draft.answers:
            section.ok = False
            out.add(self.labels["uncovered"])
        else:
            answers = "\n".join(f"- {node.question} {quoted(answer)}" for node, answer in draft.answers)
            messages = render(
                "section",
                style=ctx.style,
                language=ctx.language,
                title=self.parent.question,
                section=section.title,
                answers=answers,
            )
            grounds = "\n".join([self.parent.question, section.title, answers])
            await self._stream(writer, messages, draft, out, grounds, self._time_for(sections_left + 1))
            if not out.cited and not out.honest():
                # nothing the model wrote survived the checks: the cited sub-answers stand in for it
                out.replace("")
                text = "\n".join(answer for _node, answer in draft.answers)
                async for piece in writer.checked(_words(text), draft, section.title):
                    out.add(piece)
                if not out.cited:
                    section.ok = False
                    section.problems.append("no source supports what was written")
                    out.replace(self.labels["uncovered"])
        out.release()
        section.text = out.text.strip()
        self._say("\n\n")
        self.emit(
            ev.SectionDone(
                section_id=section.id,
                ok=section.ok,
                text=section.text,
                error="; ".join(section.problems)[:500] or None,
            )
        )

    async def _stream(
        self,
        writer: Writer,
        messages: list[Message],
        draft: Draft,
        out: _SectionOut,
        grounds: str,
        seconds: float,
    ) -> None:
        """The model's text through the citation checks into ``out``, within ``seconds``."""
        ctx = self.ctx
        stop = ["\n\n"] if ctx.style == "base" else None
        section = out.section

        async def pieces() -> AsyncIterator[str]:
            async for piece in ctx.model.stream(messages, stop=stop, max_tokens=self.settings.max_tokens):
                yield piece

        async def consume() -> None:
            with telemetry.step("write"):
                async for text in writer.checked(pieces(), draft, section.title if section else ""):
                    out.add(text)
                    copied = echoes_examples(
                        out.text, grounds, name="writer", style=ctx.style, language=ctx.language
                    )
                    if copied is not None:
                        raise LLMError(f"the model copied an example from its prompt ({copied})")

        problem = ""
        if seconds < 0.2:
            problem = "no time was left to write it"
        else:
            try:
                await asyncio.wait_for(consume(), seconds)
            except asyncio.TimeoutError:
                problem = f"writing stopped at its share of the report's {self.settings.research_timeout:g} s"
            except ReplyTruncated:
                problem = f"cut short: {TRUNCATED}"
            except LLMError as exc:
                problem = f"the model failed: {exc}"
        if problem:
            if section is not None:
                section.ok = False
                section.problems.append(problem)
            else:
                self.problems.append(f"summary: {problem}")
            self.emit(ev.Error(stage="answer", message=f"{out.name}: {problem}"[:500]))

    async def _summary(self, title: str, sections: list[_Section]) -> None:
        """The closing summary, written from the sections' cited text; left out when there is none."""
        written = [x for x in sections if _CITED.search(x.text)]
        if not written:
            return
        ctx = self.ctx
        self.emit(ev.SectionStarted(section_id="summary", title=self.labels["summary"], kind="summary"))
        self._say(f"## {self.labels['summary']}\n\n")
        body = "\n\n".join(f"{x.title}:\n{x.text}" for x in written)
        messages = render("summary", style=ctx.style, language=ctx.language, title=title, sections=body)
        draft = Draft([], {i: src for i, src in enumerate(self.registry.sources, start=1)})
        out = _SectionOut(self, None)
        await self._stream(self._writer(), messages, draft, out, body, self._time_for(1))
        if not out.cited:
            out.replace("")
            if not any("summary" in p for p in self.problems):
                self.problems.append("summary: no source supports what was written")
        out.release()
        self._say("\n\n")
        ok = bool(out.cited)
        self.emit(
            ev.SectionDone(
                section_id="summary",
                ok=ok,
                text=out.text.strip(),
                error=None if ok else "; ".join(self.problems)[:500],
                kind="summary",
            )
        )


class _SectionOut:
    """One section's checked text on its way to the reader: held until a citation in it survives the
    checks (text no source vouches for is not shown), then streamed as ``section_delta`` and, for clients
    that know nothing of sections, ``answer_delta``."""

    def __init__(self, research: Research, section: _Section | None) -> None:
        self.research, self.section = research, section
        self.id = section.id if section is not None else "summary"
        self.name = section.title if section is not None else "summary"
        self.pieces: list[str] = []
        self.held: list[str] = []
        self.released = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def cited(self) -> bool:
        return bool(_CITED.search(self.text))

    def add(self, piece: str) -> None:
        self.pieces.append(piece)
        if self.released:
            self._send(piece)
            return
        self.held.append(piece)
        if self.cited:
            self.release()

    def release(self) -> None:
        if not self.released and self.held:
            self._send("".join(self.held))
        self.released, self.held = True, []

    def replace(self, text: str) -> None:
        """What is held is not shown; ``text`` stands in its place (text already shown stays)."""
        shown = "".join(self.pieces[: len(self.pieces) - len(self.held)]) if not self.released else self.text
        if self.released:
            self.pieces = [shown, text] if text else [shown]
            if text:
                self._send(text)
            return
        self.pieces, self.held = ([text], [text]) if text else ([], [])

    def honest(self) -> bool:
        said = [s for s in re.split(r"(?<=[.!?。！？])\s*", strip_markers(self.text)) if s.strip()]
        return bool(said) and all(is_non_answer(s) for s in said)

    def _send(self, text: str) -> None:
        self.research.parts.append(text)
        self.research.emit(ev.SectionDelta(section_id=self.id, text=text))
        self.research.emit(ev.AnswerDelta(text=text))


async def _words(text: str) -> AsyncIterator[str]:
    for word in text.split(" "):
        yield word + " "


def _labels(language: Literal["en", "zh"]) -> dict[str, str]:
    """The report's fixed words in its language (prompts/common/report.*.md): the summary's heading,
    the note naming incomplete sections, and what an uncovered section says."""
    line = render("report", style="common", language=language, sections="$sections")[0].content.strip()
    summary, incomplete, uncovered = line.split("|")
    return {"summary": summary, "incomplete": incomplete, "uncovered": uncovered}

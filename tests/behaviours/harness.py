"""Replays one case of the reply-style corpus through the whole pipeline over a real loopback server.

Every model call of the run (planner, queries, searcher, writer) goes to a ``FakeOpenAIServer`` whose
handler answers from the case: the reply under test at its stage, and plain defaults elsewhere.
Replies are written with placeholders ``{@doc}`` for the number the model was shown for a document,
exactly as a real model reads the numbers off its prompt:

- in a searcher reply, the number of the document's passage in that searcher's prompt;
- in a writer reply, the number the writer's sub-answers use for it (one shared numbering, by order of
  the nodes, then of first use in each node's answer: what ``writer.pool`` does), read from the
  ``node_done`` events the run has emitted before the writer is called.

The handler keeps a log of what it sent at each stage, so the checks can compare words sent and words
shown.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindsearch import MindSearch, Settings
from mindsearch import events as ev
from mindsearch.testing import (
    Chunk,
    FakeOpenAIServer,
    MemoryEngine,
    Piece,
    doc_hit,
    kind_of_body,
)

from .cases import DEFAULT_ANSWERS, DEFAULT_PLANS, DEFAULT_WRITERS, DOCS, Case, Reply, Text

PLACEHOLDER = re.compile(r"\{@([a-z0-9_]+)\}")
RANGE = re.compile(r"\{@range:([a-z0-9_,]+)\}")  # "1-2"
DASH = re.compile(r"\{@dash:([a-z0-9_,]+)\}")  # "1–2", with an en dash
FINISHED = '{"add": [], "finish": true}'
# the line of the searcher and queries prompts that names the sub-question (English, Chinese)
_SUB_QUESTION = re.compile(r"^(?:Sub-question: |子问题：)(.+)$", re.MULTILINE)
# "[3] Jaws (film): ..." in the searcher's passages
_PASSAGE = re.compile(r"^\[(\d+)\] (.+?): ", re.MULTILINE)
TITLES = {title: doc_id for doc_id, (title, _text) in DOCS.items()}
URLS = {f"doc://{title.replace(' ', '_')}": doc_id for doc_id, (title, _text) in DOCS.items()}


def hits() -> list[Any]:
    return [doc_hit(title, text) for title, text in DOCS.values()]


def doc_of_url(url: str) -> str:
    return URLS.get(url, f"<unknown source {url}>")


@dataclass
class Sent:
    """One reply the fake model sent: its stage, the sub-question (for searchers) and the pieces."""

    kind: str
    question: str
    pieces: list[Piece]
    round_no: int = 0
    repair: bool = False


@dataclass
class Log:
    sent: list[Sent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what the script could not answer as written

    def of(self, kind: str) -> list[Sent]:
        return [s for s in self.sent if s.kind == kind]


def split(text: str, how: str) -> list[Piece]:
    """A reply cut into stream pieces: ``tokens`` (word-like pieces, as servers send), ``whole``,
    ``chars`` (one character each) or ``random:<seed>`` (random places, 1 to 7 characters)."""
    if not text:
        return []
    if how == "whole":
        return [text]
    if how == "chars":
        return list(text)
    if how.startswith("random:"):
        rng = random.Random(int(how.split(":", 1)[1]))
        pieces, i = [], 0
        while i < len(text):
            size = rng.randint(1, 7)
            pieces.append(text[i : i + size])
            i += size
        return list(pieces)
    return [p for p in re.findall(r"\s*[^\s\[\]【】]{1,4}|\s*[\[\]【】]|\s+", text) if p]


class Script:
    """The fake model: answers each request of a run from the case (callable as a server handler)."""

    def __init__(self, case: Case, events: list[ev.Event], how: str | None = None) -> None:
        self.case = case
        self.events = events
        self.how = how or case.split
        self.log = Log()

    async def __call__(self, body: dict[str, Any]) -> Any:
        kind = kind_of_body(body)
        text = "\n".join(str(m.get("content") or "") for m in body.get("messages", []))
        if kind == "plan":
            return self._plan(body, text)
        asked = _SUB_QUESTION.search(text)
        question = asked.group(1).strip() if asked else ""
        if kind == "queries":
            reply: Reply = json.dumps({"queries": [question]}, ensure_ascii=False)
            return self._send("queries", question, reply, {}, split_as="whole")
        if kind == "answer":
            numbers = {TITLES[t]: int(n) for n, t in _PASSAGE.findall(text) if t in TITLES}
            reply = self._answer_for(question)
            return self._send("answer", question, reply, numbers)
        numbers = await self._writer_numbers()
        written = (
            self.case.writer if self.case.writer is not None else DEFAULT_WRITERS.get(self.case.question)
        )
        if written is None:
            self.log.problems.append(f"the writer was called for {self.case.question!r}, which has no reply")
            written = "No answer was scripted."
        return self._send("write", self.case.question, written, numbers)

    def _plan(self, body: dict[str, Any], text: str) -> list[Piece]:
        repair = any(m.get("role") == "assistant" for m in body.get("messages", []))
        first_round = re.search(r"Round 1 of|第 1 轮", text) is not None
        if first_round and repair:
            reply = self.case.repair if self.case.repair is not None else self._first_plan()
        elif first_round:
            reply = self._first_plan()
        else:
            reply = self.case.later_plan if self.case.later_plan is not None else FINISHED
        sent = self._send("plan", "", reply, {})
        self.log.sent[-1].repair = repair
        self.log.sent[-1].round_no = 1 if first_round else 2
        return sent

    def _first_plan(self) -> Reply:
        if self.case.plan is not None:
            return self.case.plan
        plan = DEFAULT_PLANS.get(self.case.question)
        if plan is None:
            self.log.problems.append(f"no plan is scripted for {self.case.question!r}")
            return FINISHED
        return plan

    def _answer_for(self, question: str) -> Reply:
        reply = self.case.answers.get(question, DEFAULT_ANSWERS.get(question))
        if reply is None:
            self.log.problems.append(f"a searcher was asked an unexpected sub-question: {question!r}")
            return "The passages do not answer this sub-question."
        return reply

    async def _writer_numbers(self) -> dict[str, int]:
        """The writer's numbering, as ``writer.pool`` makes it from the finished nodes."""
        for _ in range(200):  # the run's events reach the consumer a few loop turns after they happen
            started = {e.node_id for e in self.events if isinstance(e, ev.NodeStarted)}
            finished = {e.node_id for e in self.events if isinstance(e, ev.NodeDone)}
            if started and started <= finished:
                break
            await asyncio.sleep(0.01)
        order = [n.id for e in self.events if isinstance(e, ev.Plan) for n in e.added]
        done = {e.node_id: e for e in self.events if isinstance(e, ev.NodeDone) and e.ok}
        numbers: dict[str, int] = {}
        for node_id in order:
            if node_id in done:
                for ref in done[node_id].references:
                    numbers.setdefault(doc_of_url(ref.url), len(numbers) + 1)
        return numbers

    def _send(
        self, kind: str, question: str, reply: Reply, numbers: dict[str, int], split_as: str | None = None
    ) -> list[Piece]:
        pieces = self._fill(reply, numbers, kind, split_as or self.how)
        self.log.sent.append(Sent(kind, question, pieces))
        return pieces

    def _fill(self, reply: Reply, numbers: dict[str, int], kind: str, how: str) -> list[Piece]:
        def number(doc: str) -> int:
            if doc not in numbers:
                self.log.problems.append(f"the {kind} reply cites {doc!r}, which its prompt did not show")
                return 99
            return numbers[doc]

        def range_of(match: re.Match[str]) -> str:
            found = sorted(number(doc) for doc in match.group(1).split(","))
            if found != list(range(found[0], found[-1] + 1)):
                self.log.problems.append(f"the {kind} reply's range {match.group(0)} is not contiguous")
            return f"{found[0]}-{found[-1]}"

        def fill(text: str) -> str:
            text = RANGE.sub(range_of, text)
            text = DASH.sub(lambda m: range_of(m).replace("-", "–"), text)
            return PLACEHOLDER.sub(lambda m: str(number(m.group(1))), text)

        preamble = self.case.preamble
        if isinstance(reply, str):
            return split(fill(preamble + reply), how)
        out: list[Piece] = [preamble] if preamble else []
        for piece in reply:
            if isinstance(piece, Text):
                out += split(fill(piece.text), piece.how)
            elif isinstance(piece, str):
                out.append(fill(piece))
            elif isinstance(piece, Chunk):
                delta = {k: fill(v) if isinstance(v, str) else v for k, v in piece.delta.items()}
                out.append(
                    Chunk(delta, piece.finish_reason, piece.usage, piece.choices, piece.data, piece.raw)
                )
            else:
                out.append({k: fill(v) if isinstance(v, str) else v for k, v in piece.items()})
        return out


@dataclass
class Outcome:
    """What one run of a case gave: every event, and what the fake model sent."""

    events: list[ev.Event]
    log: Log

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def done(self) -> ev.Done:
        done = self.of(ev.Done)
        assert done, "the run ended without a done event"
        return done[-1]  # type: ignore[no-any-return]


async def run_case(case: Case, data_dir: Path, how: str | None = None) -> Outcome:
    """One run of ``case`` through ``MindSearch`` with the OpenAI backend on a loopback server."""
    events: list[ev.Event] = []
    script = Script(case, events, how)
    async with FakeOpenAIServer(script) as server:
        settings = Settings(
            llm="openai",
            base_url=f"{server.url}/v1",
            model=server.model,
            data_dir=data_dir,
            llm_retries=0,
            language="auto",
        )
        async with MindSearch(settings, engines=[MemoryEngine(hits())]) as engine:
            async for event in engine.stream(case.question):
                events.append(event)
    return Outcome(events, script.log)

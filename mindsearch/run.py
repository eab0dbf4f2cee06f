"""``MindSearch``: the public entry point, and the scheduler that runs one question.

A run is an async generator of events. Inside, one task drives the run: planner rounds and node
searches are asyncio tasks; every ready node starts at once (up to ``max_concurrency``), a new planner
round starts whenever nodes have finished since the last one, so planning overlaps with searching.
Cancelling the consumer of ``stream`` cancels the run and every task in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from . import events as ev
from .citations import Dropped, reference_list, strip_markers
from .graph import Node, NodeState, PlanAction, PlanError, QuestionGraph, SubQuestion
from .llm.base import ChatModel, LLMError
from .planner import Planner, PlanOutcome
from .plugins import ENGINES, make_model
from .prompts import render
from .search.base import SearchEngine
from .searcher import NodeFailed, NodeResult, RunContext, Searcher
from .settings import Settings
from .text import detect_language
from .web.cache import Cache
from .web.extract import Extractor, TrafilaturaExtractor
from .web.fetch import Fetcher, HttpFetcher
from .writer import Writer, history_text, pool

History = Sequence[tuple[str, str]] | Sequence[dict[str, str]]
_END = object()


@dataclass
class Answer:
    """What ``MindSearch.ask`` returns: the answer text with ``[n]`` markers, and its references."""

    text: str
    references: list[ev.Reference]
    events: list[ev.Event] = field(default_factory=list)
    ok: bool = True

    def __str__(self) -> str:
        if not self.references:
            return self.text
        return f"{self.text}\n\n{reference_list(self.references)}"


class MindSearch:
    """The search engine. Give it settings, or ready-made parts (the tests give scripted ones)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        model: ChatModel | None = None,
        engines: list[SearchEngine] | None = None,
        fetcher: Fetcher | None = None,
        extractor: Extractor | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._model = model
        self._given_engines = engines
        self._engines: dict[str, SearchEngine] = {}
        self._fetcher = fetcher
        self.extractor = extractor or TrafilaturaExtractor()
        self._cache: Cache | None = None
        self.active_runs: set[asyncio.Task[None]] = set()  # what is running now, for servers and tests

    # -- parts, made on first use (loading a model takes time) ---------------------------------------
    @property
    def model(self) -> ChatModel:
        if self._model is None:
            self._model = make_model(self.settings)
        return self._model

    @property
    def engines(self) -> list[SearchEngine]:
        return self.engines_for(self.settings)

    def engines_for(self, settings: Settings) -> list[SearchEngine]:
        """The engines a run's settings name, each built once and shared by later runs."""
        if self._given_engines is not None:
            return self._given_engines
        for name in settings.engines:
            if name not in self._engines:
                self._engines[name] = ENGINES[name](settings)
        return [self._engines[name] for name in settings.engines]

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = HttpFetcher.from_settings(self.settings)
        return self._fetcher

    @property
    def cache(self) -> Cache:
        if self._cache is None:
            self._cache = Cache(self.settings.data_dir / "cache.sqlite3", self.settings.cache_ttl)
        return self._cache

    @property
    def style(self) -> Literal["chat", "base"]:
        if self.settings.prompt_style != "auto":
            return self.settings.prompt_style
        return self.model.style

    async def aclose(self) -> None:
        for engine in [*self._engines.values(), *(self._given_engines or [])]:
            await engine.aclose()
        if self._fetcher is not None:
            await self._fetcher.aclose()
        if self._model is not None:
            await self._model.aclose()
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    async def __aenter__(self) -> MindSearch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- public API ----------------------------------------------------------------------------------
    async def stream(
        self,
        question: str,
        history: History | None = None,
        *,
        options: dict[str, Any] | None = None,
        plan: list[SubQuestion] | None = None,
    ) -> AsyncIterator[ev.Event]:
        """Events of one run, ending with ``done``. Close or cancel the iterator to stop the run.

        ``options`` changes settings for this run only (``{"engines": ["local"], "max_nodes": 4}``);
        invalid options end the run with a fatal ``error`` event that says why. ``plan`` skips the
        planner with a fixed graph (evaluation with a gold decomposition); ``#k`` in a sub-question
        stands for the answer of ``qk``.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.create_task(self._guarded_run(question, history, options, plan, queue.put_nowait))
        self.active_runs.add(task)
        task.add_done_callback(self.active_runs.discard)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                yield item
            await task
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def ask(
        self,
        question: str,
        history: History | None = None,
        *,
        options: dict[str, Any] | None = None,
        plan: list[SubQuestion] | None = None,
    ) -> Answer:
        """Run to the end and return the answer with its references (and every event, for inspection)."""
        seen: list[ev.Event] = []
        async for event in self.stream(question, history, options=options, plan=plan):
            seen.append(event)
            if isinstance(event, ev.Done):
                return Answer(event.answer, event.references, seen, event.ok)
        raise RuntimeError("the run ended without a done event")  # _guarded_run always sends one

    # -- one run -------------------------------------------------------------------------------------
    async def _guarded_run(
        self,
        question: str,
        history: History | None,
        options: dict[str, Any] | None,
        plan: list[SubQuestion] | None,
        emit: Any,
    ) -> None:
        started = time.monotonic()
        try:
            try:
                settings = self.settings.with_changes(**options) if options else self.settings
            except ValidationError as exc:
                message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                emit(ev.Error(stage="settings", message=f"invalid options: {message}", fatal=True))
                emit(ev.Done(answer="", references=[], nodes=[], seconds=0.0, ok=False))
                return
            run = _Run(self, settings, question, _turns(history), emit, started)
            run.fixed_plan = plan
            await run.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a part that could not start: said once, never a traceback
            emit(ev.Error(stage="run", message=f"{type(exc).__name__}: {exc}", fatal=True))
            emit(ev.Done(answer="", references=[], nodes=[], seconds=time.monotonic() - started, ok=False))
        finally:
            emit(_END)


def _turns(history: History | None) -> list[tuple[str, str]]:
    """History as (question, answer) pairs; OpenAI-style role/content messages are paired up."""
    if not history:
        return []
    turns: list[tuple[str, str]] = []
    pending: str | None = None
    for item in history:
        if isinstance(item, dict):
            role, content = item.get("role"), str(item.get("content", ""))
            if role == "user":
                pending = content
            elif role == "assistant" and pending is not None:
                turns.append((pending, content))
                pending = None
        else:
            question, answer = item
            turns.append((str(question), str(answer)))
    return turns


def trim_history(turns: list[tuple[str, str]], max_turns: int, max_chars: int) -> list[tuple[str, str]]:
    """The most recent turns that fit both limits; a turn too long on its own is cut."""
    kept: list[tuple[str, str]] = []
    room = max_chars
    for question, answer in reversed(turns[-max_turns:] if max_turns else []):
        if room <= 0:
            break
        question, answer = question[:room], answer[: max(room - len(question), 0)]
        room -= len(question) + len(answer)
        kept.append((question, answer))
    return list(reversed(kept))


class _Run:
    def __init__(
        self,
        engine: MindSearch,
        settings: Settings,
        question: str,
        history: list[tuple[str, str]],
        emit: Any,
        started: float,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.question = " ".join(question.split())
        self.history = trim_history(history, settings.max_history_turns, settings.max_history_chars)
        self.emit = emit
        self.started = started
        self.results: dict[str, NodeResult] = {}
        self.graph = QuestionGraph(self.settings.max_nodes)
        self.fixed_plan: list[SubQuestion] | None = None

    async def run(self) -> None:
        s = self.settings
        if not self.question:
            return self._refuse("the question is empty")
        if len(self.question) > s.max_question_chars:
            return self._refuse(
                f"the question has {len(self.question)} characters; the limit is {s.max_question_chars} "
                "(MINDSEARCH_MAX_QUESTION_CHARS)"
            )
        language = s.language if s.language != "auto" else detect_language(self.question)
        model, style = self.engine.model, self.engine.style
        try:
            await model.ready()
        except LLMError as exc:
            return self._refuse(str(exc), stage="llm")
        self.ctx = RunContext(
            settings=s,
            model=model,
            engines=self.engine.engines_for(s),
            fetcher=self.engine.fetcher,
            extractor=self.engine.extractor,
            cache=self.engine.cache,
            style=style,
            language=language,
            emit=self.emit,
            pages_left=s.pages_per_question,
        )
        self.history_text = history_text(self.history, style, language)
        asked = self.question
        if self.history:
            self.question = await self._standalone(model, style, language)
        self.emit(
            ev.RunStarted(
                asked=asked,
                question=self.question,
                language=language,
                llm=model.name,
                engines=[e.name for e in self.ctx.engines],
            )
        )
        self.planner = Planner(
            model, style=style, language=language, max_rounds=s.max_rounds, max_tokens=s.max_tokens
        )
        try:
            await asyncio.wait_for(self._schedule(), s.total_timeout)
        except asyncio.TimeoutError:
            self.emit(
                ev.Error(
                    stage="run",
                    message=f"the {s.total_timeout:g} s limit for the question was reached "
                    "(MINDSEARCH_TOTAL_TIMEOUT); answering from what is known",
                )
            )
            for node in self.graph.nodes:
                if not node.finished:
                    self._fail(
                        node,
                        "stopped at the question's time limit"
                        if node.state is NodeState.RUNNING
                        else "not started before the question's time limit",
                    )
        await self._write()

    async def _standalone(
        self, model: ChatModel, style: Literal["chat", "base"], language: Literal["en", "zh"]
    ) -> str:
        """The follow-up rewritten, with the conversation, as a question that stands alone."""
        turns = "\n".join(f"Q: {q}\nA: {strip_markers(a)[:1000]}" for q, a in self.history[-4:])
        messages = render("rewrite", style=style, language=language, turns=turns, question=self.question)
        try:
            reply = await model.complete(messages, stop=["\n"], max_tokens=120)
        except LLMError as exc:
            self.emit(
                ev.Error(stage="plan", message=f"could not rewrite the follow-up ({exc}); using it as asked")
            )
            return self.question
        rewritten = " ".join(reply.strip().strip('"').split())
        if not rewritten or len(rewritten) > self.settings.max_question_chars:
            return self.question
        return rewritten

    def _refuse(self, message: str, stage: str = "settings") -> None:
        self.emit(ev.Error(stage=stage, message=message, fatal=True))  # type: ignore[arg-type]
        self.emit(
            ev.Done(answer="", references=[], nodes=[], seconds=time.monotonic() - self.started, ok=False)
        )

    # -- scheduling ------------------------------------------------------------------------------------
    async def _schedule(self) -> None:
        s = self.settings
        running: dict[asyncio.Task[None], Node] = {}
        planner_task: asyncio.Task[Any] | None = None
        rounds = 0
        finished_at_round = -1
        planning_done = False
        if self.fixed_plan is not None:  # a given plan: no planner rounds at all
            try:
                self.graph.check(self.fixed_plan)
            except PlanError as exc:
                self.emit(ev.Error(stage="plan", message=f"the given plan is invalid: {exc}", fatal=True))
                return
            planning_done = self._apply_plan(PlanOutcome(PlanAction(add=self.fixed_plan, finish=True)), 1)
            rounds = 1
        try:
            while True:
                finished_count = sum(1 for node in self.graph.nodes if node.finished)
                if (
                    planner_task is None
                    and not planning_done
                    and rounds < s.max_rounds
                    and finished_count > finished_at_round
                ):
                    rounds += 1
                    finished_at_round = finished_count
                    planner_task = asyncio.create_task(
                        self.planner.plan(self.question, self.graph, rounds, self.history_text)
                    )
                for node in self.graph.ready():
                    if len(running) >= s.max_concurrency:
                        break
                    node.state = NodeState.RUNNING
                    self.emit(ev.NodeStarted(node_id=node.id, question=node.question))
                    running[asyncio.create_task(self._run_node(node))] = node
                waiting: set[asyncio.Task[Any]] = set(running)
                if planner_task is not None:
                    waiting.add(planner_task)
                if not waiting:
                    return
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is planner_task:
                        planner_task = None
                        planning_done = self._apply_plan(task.result(), rounds) or rounds >= s.max_rounds
                    else:
                        running.pop(task)
        finally:
            pending = [*running, *([planner_task] if planner_task else [])]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _apply_plan(self, outcome: Any, round_no: int) -> bool:
        """Add the planner's nodes; True when planning is over."""
        action: PlanAction | None = outcome.action
        if action is None:
            self.emit(ev.Error(stage="plan", message=outcome.error or "the planner failed"))
            if len(self.graph) == 0:  # nothing planned at all: search the question itself
                action = PlanAction(add=[SubQuestion(id="q1", question=self.question)], finish=True)
                note = "the planner failed; searching the question itself"
            else:
                return True
        else:
            note = outcome.note
        added = self.graph.add(action.add)
        self.emit(
            ev.Plan(
                round=round_no,
                added=[ev.PlannedNode(id=n.id, question=n.question, depends_on=n.depends_on) for n in added],
                finish=action.finish,
                note=note,
            )
        )
        return action.finish

    async def _run_node(self, node: Node) -> None:
        parents = self.graph.parents(node.id)
        try:
            result = await asyncio.wait_for(Searcher(self.ctx).run(node, parents), self.settings.node_timeout)
        except asyncio.TimeoutError:
            self._fail(node, f"timed out after {self.settings.node_timeout:g} s (MINDSEARCH_NODE_TIMEOUT)")
        except (NodeFailed, LLMError) as exc:
            self._fail(node, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one node's bug must not take the others down
            self._fail(node, f"{type(exc).__name__}: {exc}")
        else:
            node.state, node.answer = NodeState.DONE, result.answer
            self.results[node.id] = result
            self.emit(
                ev.NodeDone(node_id=node.id, ok=True, answer=result.answer, references=result.references)
            )

    def _fail(self, node: Node, error: str) -> None:
        node.state, node.error = NodeState.FAILED, error
        self.emit(ev.Error(stage="node", node_id=node.id, message=error))
        self.emit(ev.NodeDone(node_id=node.id, ok=False, answer="", references=[], error=error))

    # -- writing ---------------------------------------------------------------------------------------
    async def _write(self) -> None:
        ctx = self.ctx

        def dropped(d: Dropped) -> None:
            self.emit(ev.CitationDropped(marker=d.marker, reason=d.reason))  # type: ignore[arg-type]

        writer = Writer(ctx.model, self.settings, style=ctx.style, language=ctx.language, on_drop=dropped)
        draft = pool(self.graph.nodes, self.results, ctx.sources)
        failures = [f"{n.question}: {n.error}" for n in self.graph.nodes if n.state is NodeState.FAILED]
        parts: list[str] = []
        try:
            async for piece in writer.write(self.question, draft, self.history_text, failures):
                parts.append(piece)
                self.emit(ev.AnswerDelta(text=piece))
        except LLMError as exc:
            self.emit(ev.Error(stage="answer", message=f"the final answer could not be written: {exc}"))
            if not parts and draft.answers:  # fall back to the sub-answers themselves, still cited
                text = "\n".join(answer for _node, answer in draft.answers)
                async for piece in writer.checked(_replay(text), draft):
                    parts.append(piece)
                    self.emit(ev.AnswerDelta(text=piece))
        references = writer.registry.references()
        self.emit(ev.References(references=references))
        nodes = [
            ev.PlannedNode(id=n.id, question=n.question, depends_on=n.depends_on) for n in self.graph.nodes
        ]
        ok = bool(draft.answers)
        self.emit(
            ev.Done(
                answer="".join(parts).strip(),
                references=references,
                nodes=nodes,
                seconds=round(time.monotonic() - self.started, 3),
                ok=ok,
            )
        )


async def _replay(text: str) -> AsyncIterator[str]:
    for word in text.split(" "):
        yield word + " "

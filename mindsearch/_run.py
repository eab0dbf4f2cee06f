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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from . import _telemetry as telemetry
from . import events as ev
from ._decompose import rule_plan
from ._graph import Node, NodeState, PlanAction, PlanError, QuestionGraph, SubQuestion
from ._planner import BY_RULE, FELL_BACK, Planner, PlanOutcome, only_echoes
from ._prompts import echoes_examples, render
from ._searcher import NodeFailed, NodeResult, RunContext, Searcher
from ._store import PageCache, open_cache
from ._text import detect_language
from ._writer import Writer, history_text, not_found, pool
from .citations import Dropped, reference_list, sentences, strip_markers
from .citations.support import is_non_answer
from .llm.base import TRUNCATED, ChatModel, LLMError, ReplyTruncated
from .options import OptionsError, RunOptions, describe, run_options
from .plugins import ENGINES, make_model
from .search.base import SearchEngine
from .settings import Settings
from .web.extract import Extractor, TrafilaturaExtractor
from .web.fetch import Fetcher, HttpFetcher

History = Sequence[tuple[str, str]] | Sequence[dict[str, str]]
# our own words, with nothing from outside in them: clients may see them as they are
UNSUPPORTED_ANSWER = "no source read supports the answer the model wrote, so it is not shown"
OWN_ERROR_MESSAGES = frozenset({UNSUPPORTED_ANSWER})
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
        self._cache: PageCache | None = None
        self._close_cache: Callable[[], Awaitable[None]] | None = None
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
    def cache(self) -> PageCache:
        """SQLite in the data folder, or Redis (shared by a fleet) when MINDSEARCH_REDIS_URL is set."""
        if self._cache is None:
            self._cache, self._close_cache = open_cache(self.settings)
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
        if self._close_cache is not None:
            await self._close_cache()
        self._cache = self._close_cache = None

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
        options: RunOptions | Mapping[str, Any] | None = None,
        plan: list[SubQuestion] | None = None,
    ) -> AsyncIterator[ev.Event]:
        """Events of one run, ending with exactly one ``done``. Close or cancel the iterator to stop it.

        ``options`` (a ``RunOptions``, or a mapping of its fields: ``{"engines": ["local"],
        "max_nodes": 4}``) changes this run only; anything that is not a per-run option, or is
        invalid, ends the run with a fatal ``error`` event that says why. ``plan`` skips the planner
        with a fixed graph (evaluation with a gold decomposition); ``#k`` in a sub-question stands for
        the short answer of ``qk``.
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
        options: RunOptions | Mapping[str, Any] | None = None,
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
        options: RunOptions | Mapping[str, Any] | None,
        plan: list[SubQuestion] | None,
        emit: Callable[[Any], None],
    ) -> None:
        """One run under the one failure policy: whatever fails, finished work reaches the answer,
        ``ok`` is true only for a complete answer, and exactly one ``done`` ends the stream."""
        started = time.monotonic()
        out = _Once(telemetry.start_run(emit))  # logs, metrics and spans of the run, from its events
        run: _Run | None = None
        try:
            try:
                chosen = run_options(options)
                settings = chosen.apply(self.settings)
            except (OptionsError, ValidationError) as exc:
                message = describe(exc) if isinstance(exc, ValidationError) else str(exc)
                out.refuse(f"invalid options: {message}", "settings", started)
                return
            run = _Run(self, settings, question, _turns(history), out, started)
            run.fixed_plan = plan
            run.depth = chosen.depth or "normal"
            await run.run()
        except asyncio.CancelledError:
            if _really_cancelled():
                raise
            out(ev.Error(stage="run", message="a step was cancelled from inside the run", fatal=False))
            if run is not None:
                await run.salvage()
        except Exception as exc:  # a bug or a part that could not start: said once, never a traceback
            out(ev.Error(stage="run", message=f"{type(exc).__name__}: {exc}"[:500], fatal=run is None))
            if run is not None:
                await run.salvage()
        finally:
            if not out.done:
                out.finish(ev.Done(answer="", references=[], nodes=[], seconds=_since(started), ok=False))
            emit(_END)


def _really_cancelled() -> bool:
    """Whether this task is being cancelled, rather than a CancelledError escaping from a step."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0  # before Python 3.11: assume it is real


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


class _Once:
    """The run's output: passes events on, and lets exactly one ``done`` through."""

    def __init__(self, emit: Callable[[Any], None]) -> None:
        self._emit = emit
        self.done = False

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Done):
            self.finish(event)
        elif not self.done:
            self._emit(event)

    def finish(self, event: ev.Done) -> None:
        if not self.done:
            self.done = True
            self._emit(event)

    def refuse(self, message: str, stage: str, started: float) -> None:
        """A run that cannot start: one fatal error, then ``done`` with no answer."""
        self(ev.Error(stage=stage, message=message, fatal=True))  # type: ignore[arg-type]
        self.finish(ev.Done(answer="", references=[], nodes=[], seconds=_since(started), ok=False))


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
        emit: _Once,
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
        self.depth = "normal"
        self.ctx: RunContext | None = None
        self.incomplete: list[str] = []  # why the answer is not complete, if it is not
        self.slots: asyncio.Semaphore | None = None  # node searches at once, shared by a report's sections

    async def run(self) -> None:
        s = self.settings
        if not self.question:
            return self.emit.refuse("the question is empty", "settings", self.started)
        if len(self.question) > s.max_question_chars:
            return self.emit.refuse(
                f"the question has {len(self.question)} characters; the limit is {s.max_question_chars} "
                "(MINDSEARCH_MAX_QUESTION_CHARS)",
                "settings",
                self.started,
            )
        if self.fixed_plan is not None:
            try:
                QuestionGraph(s.max_nodes).check(self.fixed_plan)
            except PlanError as exc:
                return self.emit.refuse(f"the given plan is invalid: {exc}", "plan", self.started)
        language = s.language if s.language != "auto" else detect_language(self.question)
        model, style = self.engine.model, self.engine.style
        try:
            await model.ready()
        except LLMError as exc:
            return self.emit.refuse(str(exc), "llm", self.started)
        from ._documents import scoped_engines  # collections of uploaded documents (mindsearch/_documents.py)

        try:
            engines = scoped_engines(self.engine.engines_for(s), s)
        except LookupError as exc:
            return self.emit.refuse(str(exc), "settings", self.started)
        self.ctx = RunContext(
            settings=s,
            model=model,
            engines=engines,
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
        rewrite: ev.RewriteStatus = "none"
        rewrite_error = ""
        if self.history:
            self.question, rewrite, rewrite_error = await self._standalone(model, style, language)
        self.emit(
            ev.RunStarted(
                run_id=telemetry.run_id(),
                asked=asked,
                question=self.question,
                language=language,
                llm=model.name,
                engines=[e.name for e in self.ctx.engines],
                rewrite=rewrite,
                rewrite_error=rewrite_error,
            )
        )
        self.planner = Planner(
            model, style=style, language=language, max_rounds=s.max_rounds, max_tokens=s.max_tokens
        )
        if self.depth == "quick" and self.fixed_plan is None:
            self.fixed_plan = [SubQuestion(id="q1", question=self.question)]
        if self.depth == "deep" and self.fixed_plan is None:
            from ._research import Research  # research mode: an outlined report (mindsearch/_research.py)

            return await Research(self).run()
        try:
            await asyncio.wait_for(self._schedule(), s.total_timeout)
        except asyncio.TimeoutError:
            self._stop_unfinished(
                f"the {s.total_timeout:g} s limit for the question was reached "
                "(MINDSEARCH_TOTAL_TIMEOUT); answering from what is known",
                "stopped at the question's time limit",
            )
        except asyncio.CancelledError:
            if _really_cancelled():
                raise
            self._stop_unfinished("a step was cancelled from inside the run", "cancelled")
        except Exception as exc:  # a bug in scheduling: what is finished is still answered
            self._stop_unfinished(f"the search stopped early: {type(exc).__name__}: {exc}"[:500], "stopped")
        await self._write()

    def _stop_unfinished(self, message: str, why: str) -> None:
        """The search is over before its end: say why, and fail what did not finish."""
        self.incomplete.append(message)
        self.emit(ev.Error(stage="run", message=message))
        for node in self.graph.nodes:
            if not node.finished:
                started = node.state is NodeState.RUNNING
                self._fail(node, why if started else f"not started: {why}")

    async def _standalone(
        self, model: ChatModel, style: Literal["chat", "base"], language: Literal["en", "zh"]
    ) -> tuple[str, ev.RewriteStatus, str]:
        """The follow-up rewritten, with the conversation, as a question that stands alone; what became
        of the rewrite; and, when it failed (the follow-up is then searched as asked), why."""
        turns = "\n".join(f"Q: {q}\nA: {strip_markers(a)[:1000]}" for q, a in self.history[-4:])
        messages = render("rewrite", style=style, language=language, turns=turns, question=self.question)
        try:
            # up to a blank line, not the first newline: a reply that starts on a new line is not empty
            with telemetry.step("rewrite"):
                reply = await model.complete(messages, stop=["\n\n"], max_tokens=120)
        except LLMError as exc:
            return self.question, "failed", f"the model failed: {exc}"[:300]
        lines = [line for line in (" ".join(raw.split()) for raw in reply.splitlines()) if line]
        rewritten = lines[0].strip('"“”「」') if lines else ""
        if not rewritten:
            return self.question, "failed", "the model's rewrite was empty"
        if len(rewritten) > self.settings.max_question_chars:
            return self.question, "failed", f"the model's rewrite was too long ({len(rewritten)} characters)"
        if rewritten == self.question:
            return self.question, "unchanged", ""
        return rewritten, "rewritten", ""

    # -- scheduling ------------------------------------------------------------------------------------
    async def _schedule(self) -> None:
        s = self.settings
        running: dict[asyncio.Task[None], Node] = {}
        planner_task: asyncio.Task[PlanOutcome] | None = None
        rounds = 0
        finished_at_round = -1
        planning_done = False
        if self.fixed_plan is not None:  # a given plan: no planner rounds at all
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
                    planner_task = asyncio.create_task(self._plan_round(rounds))
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
                        outcome = (
                            PlanOutcome(None, "the planner round was cancelled")
                            if task.cancelled()
                            else task.result()
                        )
                        planning_done = self._apply_plan(outcome, rounds) or rounds >= s.max_rounds
                    else:
                        node = running.pop(task)
                        if not node.finished:  # cancelled from inside, or a bug past the node's guard
                            self._fail(node, "the search of this sub-question was cancelled")
        finally:
            pending = [*running, *([planner_task] if planner_task else [])]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _plan_round(self, round_no: int) -> PlanOutcome:
        """One planner round; any failure is an outcome with an error, never an exception."""
        telemetry.enter_step("plan")
        try:
            return await self.planner.plan(self.question, self.graph, round_no, self.history_text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return PlanOutcome(None, f"the planner failed: {type(exc).__name__}: {exc}"[:500])

    def _apply_plan(self, outcome: PlanOutcome, round_no: int) -> bool:
        """Add the planner's nodes; True when planning is over.

        A first round without a valid plan is not an error: the question is split by rule (for weak
        models, see ``rule_planner``) or else searched itself as the one sub-question, and the plan
        event's note says so; a first plan that only repeats the question is split by rule too. A
        later round that fails is an error, since the graph it would have grown may now miss a step.
        """
        action, note, recovered_from = outcome.action, outcome.note, outcome.recovered_from
        echo = action is not None and self.fixed_plan is None and only_echoes(action, self.question)
        if action is not None and echo and len(self.graph) == 0:
            by_rule = self._rule_plan()  # a weak model that only repeats the question: split it by rule
            if by_rule:
                action = PlanAction(add=by_rule, finish=True)
                note, recovered_from = BY_RULE, "the plan only repeated the question"
        if action is not None:
            try:
                added = self.graph.add(action.add)
            except PlanError as exc:  # checked by the planner already; a plan that changed under it
                action, problem = None, f"the plan could not be added: {exc}"
        else:
            problem = outcome.error or "the planner failed"
        if action is None:
            if len(self.graph) > 0:  # the plan is cut short: what is planned is answered, maybe not all
                message = f"planning stopped at round {round_no}: {problem}"
                self.incomplete.append(message)
                self.emit(ev.Error(stage="plan", message=message[:500]))
                return True
            by_rule = self._rule_plan()
            action = PlanAction(add=by_rule or [SubQuestion(id="q1", question=self.question)], finish=True)
            added = self.graph.add(action.add)
            note, recovered_from = (BY_RULE if by_rule else FELL_BACK), problem
        self.emit(
            ev.Plan(
                round=round_no,
                added=[ev.PlannedNode(id=n.id, question=n.question, depends_on=n.depends_on) for n in added],
                finish=action.finish,
                note=note,
                recovered_from=recovered_from[:500],
            )
        )
        return action.finish

    def _rule_plan(self) -> list[SubQuestion] | None:
        """The question split by rule (``mindsearch._decompose``), when the setting allows it for this
        model and a rule fits; else None."""
        assert self.ctx is not None
        mode = self.settings.rule_planner
        if mode == "off" or (mode == "auto" and self.ctx.style != "base"):
            return None
        return rule_plan(self.question, self.ctx.language, self.settings.max_nodes)

    async def _run_node(self, node: Node) -> None:
        assert self.ctx is not None
        telemetry.enter_node(node.id)  # this task's model calls, searches and fetches are the node's
        parents = self.graph.parents(node.id)
        try:
            async with self.slots or contextlib.nullcontext():
                result = await asyncio.wait_for(
                    Searcher(self.ctx).run(node, parents), self.settings.node_timeout
                )
        except asyncio.TimeoutError:
            self._fail(node, f"timed out after {self.settings.node_timeout:g} s (MINDSEARCH_NODE_TIMEOUT)")
        except (NodeFailed, LLMError) as exc:
            self._fail(node, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one node's bug must not take the others down
            self._fail(node, f"{type(exc).__name__}: {exc}")
        else:
            node.state, node.answer, node.short_answer = NodeState.DONE, result.answer, result.short_answer
            self.results[node.id] = result
            if result.truncated:
                message = f"the answer was cut short: {TRUNCATED}"
                self.incomplete.append(message)
                self.emit(ev.Error(stage="node", node_id=node.id, message=message))
            self.emit(
                ev.NodeDone(
                    node_id=node.id,
                    ok=True,
                    answer=result.answer,
                    references=result.references,
                    short_answer=result.short_answer,
                )
            )

    def _fail(self, node: Node, error: str) -> None:
        node.state, node.error = NodeState.FAILED, error
        self.emit(ev.Error(stage="node", node_id=node.id, message=error))
        self.emit(ev.NodeDone(node_id=node.id, ok=False, answer="", references=[], error=error))

    # -- writing ---------------------------------------------------------------------------------------
    async def _write(self) -> None:
        """The final answer, then ``references`` and ``done``. Whatever fails here, the finished node
        answers are still given (cited), and ``ok`` says whether the answer is complete.

        The answer is held until one of its citations survives the checks: an answer no source
        supports is not shown as an answer, the reader is told the sources do not answer instead.
        """
        assert self.ctx is not None
        ctx = self.ctx

        def dropped(d: Dropped) -> None:
            self.emit(ev.CitationDropped(marker=d.marker, reason=d.reason))  # type: ignore[arg-type]

        writer = Writer(ctx.model, self.settings, style=ctx.style, language=ctx.language, on_drop=dropped)
        draft = pool(self.graph.nodes, self.results, ctx.sources)
        failures = [f"{n.question}: {n.error}" for n in self.graph.nodes if n.state is NodeState.FAILED]
        grounds = "\n".join([self.question, self.history_text, *(a for _n, a in draft.answers)])
        out = _Held(self.emit, writer, grounds, ctx.style, ctx.language)
        try:
            async for piece in writer.write(self.question, draft, self.history_text, failures):
                out.add(piece)
        except asyncio.CancelledError:
            if _really_cancelled():
                raise
            await self._writer_failed("the writer was cancelled", writer, draft, out)
        except ReplyTruncated:
            self.incomplete.append(TRUNCATED)
            self.emit(ev.Error(stage="answer", message=f"the final answer was cut short: {TRUNCATED}"))
        except _CopiedExample as exc:
            await self._writer_failed(str(exc), writer, draft, out)
        except Exception as exc:  # LLMError, or a bug: the answer falls back, it is not lost
            reason = str(exc) if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"
            await self._writer_failed(reason, writer, draft, out)
        if not out.released and draft.answers and not writer.registry.references() and not out.honest():
            # every citation failed its check: the text is a claim nothing vouches for
            self.incomplete.append("no source supports the answer")
            self.emit(
                ev.Error(
                    stage="answer",
                    message=UNSUPPORTED_ANSWER,
                )
            )
            out.replace(not_found(ctx.language))
        out.release()
        references = writer.registry.references()
        self.emit(ev.References(references=references))
        nodes = [
            ev.PlannedNode(id=n.id, question=n.question, depends_on=n.depends_on) for n in self.graph.nodes
        ]
        complete = bool(draft.answers) and not failures and not self.incomplete
        self.emit(
            ev.Done(
                answer=out.text.strip(),
                references=references,
                nodes=nodes,
                seconds=_since(self.started),
                ok=complete,
            )
        )

    async def _writer_failed(self, reason: str, writer: Writer, draft: Any, out: _Held) -> None:
        """The writer stopped: keep what it wrote if a source backs it; else give the cited sub-answers."""
        self.incomplete.append(reason)
        self.emit(ev.Error(stage="answer", message=f"the final answer could not be written: {reason}"[:500]))
        if (out.text.strip() and writer.registry.references()) or not draft.answers:
            return
        out.replace("")
        text = "\n".join(answer for _node, answer in draft.answers)
        async for piece in writer.checked(_replay(text), draft):
            out.add(piece, check=False)

    async def salvage(self) -> None:
        """After an unexpected failure: an answer from the finished sub-questions, with no model call."""
        if self.emit.done:
            return
        answers = [strip_markers(n.answer).strip() for n in self.graph.nodes if n.state is NodeState.DONE]
        text = "\n".join(a for a in answers if a)
        if text:
            self.emit(ev.AnswerDelta(text=text))
        nodes = [
            ev.PlannedNode(id=n.id, question=n.question, depends_on=n.depends_on) for n in self.graph.nodes
        ]
        self.emit(ev.References(references=[]))
        self.emit(ev.Done(answer=text, references=[], nodes=nodes, seconds=_since(self.started), ok=False))


async def _replay(text: str) -> AsyncIterator[str]:
    for word in text.split(" "):
        yield word + " "


class _CopiedExample(LLMError):
    """The writer repeated an invented example from its prompt instead of answering."""


class _Held:
    """The final answer on its way to the reader: held until a citation in it survives, then streamed.

    Held text is also checked for a copied few-shot example before it is shown.
    """

    def __init__(
        self,
        emit: _Once,
        writer: Writer,
        grounds: str,
        style: Literal["chat", "base"],
        language: Literal["en", "zh"],
    ) -> None:
        self.emit, self.writer, self.grounds = emit, writer, grounds
        self.style, self.language = style, language
        self.parts: list[str] = []
        self.held: list[str] = []
        self.released = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, piece: str, *, check: bool = True) -> None:
        self.parts.append(piece)
        if self.released:
            self.emit(ev.AnswerDelta(text=piece))
            return
        self.held.append(piece)
        if check:
            copied = echoes_examples(
                self.text, self.grounds, name="writer", style=self.style, language=self.language
            )
            if copied is not None:
                raise _CopiedExample(f"the model copied an example from its prompt ({copied})")
        if self.writer.registry.references():
            self.release()

    def release(self) -> None:
        if not self.released and self.held:
            self.emit(ev.AnswerDelta(text="".join(self.held)))
        self.released, self.held = True, []

    def replace(self, text: str) -> None:
        """Nothing held is shown; ``text`` stands in its place (held, to be released)."""
        self.parts, self.held = ([text], [text]) if text else ([], [])

    def honest(self) -> bool:
        """Whether the held text only says the sources do not answer (a statement, not a claim)."""
        said = [s for s in sentences(strip_markers(self.text)) if s]
        return bool(said) and all(is_non_answer(s) for s in said)

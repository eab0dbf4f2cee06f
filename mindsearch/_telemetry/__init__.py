"""What a run cost and where it spent its time: structured log lines, Prometheus metrics, OpenTelemetry spans.

The pipeline calls in here at a few points, each one line: a run starts (``start_run`` wraps its event
output), a node's task begins (``enter_node``), a step sets what its model calls are for (``step``,
``enter_step``), a model call streams (``model_call``, from ``ChatModel``), a page is fetched
(``observe_fetch`` on ``HttpFetcher.fetch``), an engine is asked (``searched``) and the cache is read
(``cache_lookup``). Runs and nodes are timed from the run's own events (``run_started``, ``node_started``,
``node_done``, ``page_read``, ``done``), so the scheduler needs no other hook.

Each ended run, node, model call, engine query and page fetch becomes:

- one log record on the ``mindsearch._telemetry`` logger at INFO, with its fields in ``record.telemetry``
  (``mindsearch._logs`` writes it as one JSON line: ``MINDSEARCH_LOG_FORMAT=json``, the default of
  ``mindsearch serve``); every record carries the run id, and the text in it is redacted;
- samples of the ``mindsearch_*`` Prometheus metrics (``telemetry.metrics``, served at ``/metrics``);
- a span (``telemetry.tracing``): run -> node -> model call / fetch / engine query;
- for model calls inside a run, also a ``model_call`` event in the run's stream, with its token usage.

Where the scope of a call comes from: context variables. A run's task sets the run; node tasks and
planner rounds, created from it, inherit it and set their own node or step. Telemetry never fails a
run: an error in here is logged and swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .. import events as ev
from . import metrics, tracing
from .redact import bare_url, brief, host_of

log = logging.getLogger("mindsearch.telemetry")

S = TypeVar("S")
T = TypeVar("T")

_RUN: ContextVar[RunScope | None] = ContextVar("mindsearch_run", default=None)
_NODE: ContextVar[str | None] = ContextVar("mindsearch_node", default=None)
_STEP: ContextVar[ev.ModelCallStep | None] = ContextVar("mindsearch_step", default=None)
REQUEST_ID: ContextVar[str] = ContextVar("mindsearch_request_id", default="")


# --- log records ---------------------------------------------------------------------------------
def record(kind: str, **fields: Any) -> None:
    """One structured log record: ``{"event": kind, ...fields}`` (None fields left out)."""
    if not log.isEnabledFor(logging.INFO):
        return
    data: dict[str, Any] = {"event": kind}
    data.update((key, value) for key, value in fields.items() if value is not None)
    summary = " ".join(f"{key}={value}" for key, value in data.items() if key != "event")
    log.info("%s %s", kind, summary, extra={"telemetry": data})


def _guarded(what: str) -> Callable[[Callable[..., T]], Callable[..., T | None]]:
    """Telemetry must never break what it watches: an exception in ``what`` is logged, not raised."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T | None]:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> T | None:
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.debug("telemetry: %s failed", what, exc_info=True)
                return None

        return guarded

    return wrap


def public_model_name(name: str) -> str:
    """``openai:model@http://host/v1`` as ``openai:model``: where the model runs is not said."""
    return name.split("@", 1)[0]


# --- runs and nodes ------------------------------------------------------------------------------
@dataclass
class _Node:
    started: float
    span: Any


@dataclass
class _Totals:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    nodes: int = 0
    nodes_failed: int = 0
    pages_read: int = 0
    pages_failed: int = 0
    errors: int = 0
    error: str | None = None  # the first fatal error, else the first error: why a run was not ok
    fatal: bool = False


class RunScope:
    """One run as telemetry sees it: its id, its span, its open nodes and its totals.

    Called with each event of the run (it is the run's output, in front of the consumer's queue): it
    times nodes and the run from the events, and puts the ``model_call`` events into the stream, held
    back until ``run_started`` so that it stays the first event.
    """

    def __init__(self, emit: Callable[[Any], None]) -> None:
        self.run_id = uuid.uuid4().hex[:16]
        self.request_id = REQUEST_ID.get()
        self._emit = emit
        self.started = time.monotonic()
        self.llm = ""
        self.engines: list[str] = []
        self.nodes: dict[str, _Node] = {}
        self.totals = _Totals()
        self.finished = False
        self._announced = False  # run_started went out
        self._held: list[ev.Event] = []  # model calls made before run_started (the follow-up's rewrite)
        self.span = self._begin()

    @_guarded("a run's start")
    def _begin(self) -> Any:
        metrics.run_started()
        return tracing.start(
            "mindsearch.run",
            None,
            {"mindsearch.run_id": self.run_id, "mindsearch.request_id": self.request_id or None},
        )

    def __call__(self, event: Any) -> None:
        if self.finished:
            return
        if isinstance(event, ev.ModelCall) and not self._announced:
            self._held.append(event)
            return
        if isinstance(event, ev.Done) and not self._announced:
            self._release()
        self._observe(event)
        self._emit(event)
        if isinstance(event, ev.RunStarted):
            self._announced = True
            self._release()

    def _release(self) -> None:
        held, self._held = self._held, []
        for event in held:
            self._observe(event)
            self._emit(event)

    def node_span(self, node_id: str | None) -> Any:
        node = self.nodes.get(node_id) if node_id is not None else None
        return node.span if node is not None else self.span

    @_guarded("a run event")
    def _observe(self, event: Any) -> None:
        t = self.totals
        if isinstance(event, ev.RunStarted):
            self.llm, self.engines = public_model_name(event.llm), list(event.engines)
        elif isinstance(event, ev.NodeStarted):
            span = tracing.start(
                "mindsearch.node",
                self.span,
                {"mindsearch.run_id": self.run_id, "mindsearch.node_id": event.node_id},
            )
            self.nodes[event.node_id] = _Node(time.monotonic(), span)
        elif isinstance(event, ev.NodeDone):
            self._node_done(event)
        elif isinstance(event, ev.ModelCall):
            t.calls += 1
            t.prompt_tokens += event.usage.prompt_tokens
            t.completion_tokens += event.usage.completion_tokens
            t.estimated = t.estimated or event.usage.source == "estimate"
        elif isinstance(event, ev.PageRead):
            t.pages_read += 1
            t.pages_failed += 0 if event.ok else 1
            metrics.page_read(event.ok, event.cached)
        elif isinstance(event, ev.Error):
            t.errors += 1
            if t.error is None or (event.fatal and not t.fatal):
                t.error, t.fatal = brief(f"{event.stage}: {event.message}"), event.fatal
        elif isinstance(event, ev.Done):
            self._done(event)

    def _node_done(self, event: ev.NodeDone) -> None:
        node = self.nodes.pop(event.node_id, None)
        outcome = "ok" if event.ok else "failed"
        seconds = round(time.monotonic() - node.started, 3) if node is not None else 0.0
        self.totals.nodes += 1
        self.totals.nodes_failed += 0 if event.ok else 1
        error = brief(event.error) if event.error else None
        if node is not None:  # a node failed before it started has no time to tell
            metrics.node_finished(outcome, seconds)
            tracing.end(node.span, {"mindsearch.outcome": outcome}, error=error)
        record(
            "node",
            run_id=self.run_id,
            node_id=event.node_id,
            outcome=outcome if node is not None else "not_started",
            seconds=seconds,
            references=len(event.references),
            error=error,
        )

    def _done(self, event: ev.Done) -> None:
        self.finished = True
        t = self.totals
        if event.ok:
            outcome = "ok"
        elif _cancelling():
            outcome = "cancelled"
        else:
            outcome = "incomplete" if event.answer else "failed"
        for node_id, node in list(self.nodes.items()):  # nodes a failure left without node_done
            tracing.end(node.span, {"mindsearch.outcome": "unfinished"}, error="the run ended first")
            del self.nodes[node_id]
        metrics.run_finished(outcome, event.seconds)
        fields: dict[str, Any] = {
            "run_id": self.run_id,
            "request_id": self.request_id or None,
            "outcome": outcome,
            "seconds": event.seconds,
            "llm": self.llm or None,
            "engines": self.engines or None,
            "nodes": t.nodes,
            "nodes_failed": t.nodes_failed,
            "model_calls": t.calls,
            "prompt_tokens": t.prompt_tokens,
            "completion_tokens": t.completion_tokens,
            "total_tokens": t.prompt_tokens + t.completion_tokens,
            "tokens_estimated": t.estimated,
            "pages_read": t.pages_read,
            "pages_failed": t.pages_failed,
            "references": len(event.references),
            "errors": t.errors,
            "error": t.error if outcome != "ok" else None,
        }
        record("run", **fields)
        tracing.end(
            self.span,
            {
                "mindsearch.outcome": outcome,
                "mindsearch.llm": self.llm or None,
                "mindsearch.nodes": t.nodes,
                "mindsearch.model_calls": t.calls,
                "gen_ai.usage.input_tokens": t.prompt_tokens,
                "gen_ai.usage.output_tokens": t.completion_tokens,
                "mindsearch.usage.estimated": t.estimated,
            },
            error=fields["error"] if outcome in ("failed", "incomplete") else None,
        )


def _cancelling() -> bool:
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return bool(cancelling and cancelling() > 0)


def start_run(emit: Callable[[Any], None]) -> RunScope:
    """Begin a run in the current task: its events go through the returned scope on their way to
    ``emit``. Call from the task that runs the whole run (its node tasks inherit the scope)."""
    scope = RunScope(emit)
    _RUN.set(scope)
    _NODE.set(None)
    _STEP.set(None)
    return scope


def run_id() -> str:
    """The current run's id ("" outside a run)."""
    scope = _RUN.get()
    return scope.run_id if scope is not None else ""


def tokens_used() -> int:
    """Model tokens the current run has used so far (0 outside a run): what a token budget watches."""
    scope = _RUN.get()
    return scope.totals.prompt_tokens + scope.totals.completion_tokens if scope is not None else 0


def enter_node(node_id: str) -> None:
    """The current task works for this node (call first thing in the node's own task)."""
    _NODE.set(node_id)
    _STEP.set(None)


def enter_step(name: ev.ModelCallStep) -> None:
    """The model calls of the current task are for this step (call first thing in the step's own task)."""
    _STEP.set(name)


@contextlib.contextmanager
def step(name: ev.ModelCallStep) -> Iterator[None]:
    """The model calls made inside are for this step."""
    token = _STEP.set(name)
    try:
        yield
    finally:
        _STEP.reset(token)


# --- model calls ---------------------------------------------------------------------------------
class _Model(Protocol):
    name: str


class _Request(Protocol):
    @property
    def messages(self) -> Any: ...
    @property
    def schema(self) -> Any: ...
    @property
    def meter(self) -> Any: ...


async def model_call(model: _Model, request: _Request, pieces: AsyncIterator[str]) -> AsyncIterator[str]:
    """``pieces`` (one model call's reply) passed on unchanged, timed and counted when the call ends."""
    scope, node_id = _RUN.get(), _NODE.get()
    step_name: ev.ModelCallStep = _STEP.get() or (
        "other" if scope is None else ("queries" if request.schema else "answer") if node_id else "write"
    )
    started = time.monotonic()
    first: float | None = None
    received: list[str] = []
    outcome: ev.CallOutcome = "cancelled"
    error: str | None = None
    parent = scope.node_span(node_id) if scope is not None else None
    span = _start_call_span(model, step_name, scope, node_id, parent)
    try:
        async for piece in pieces:
            if first is None:
                first = time.monotonic() - started
            received.append(piece)
            yield piece
        outcome = "ok"
    except BaseException as exc:
        outcome, error = _call_outcome(exc)
        raise
    finally:
        try:
            aclose = getattr(pieces, "aclose", None)
            if aclose is not None:
                await aclose()  # the backend fills in its counts as it finishes
        finally:
            _call_ended(
                model, request, scope, node_id, step_name, started, first, received, outcome, error, span
            )


@_guarded("a model call span")
def _start_call_span(
    model: _Model, step_name: str, scope: RunScope | None, node_id: str | None, parent: Any
) -> Any:
    return tracing.start(
        f"mindsearch.model_call {step_name}",
        parent,
        {
            "mindsearch.run_id": scope.run_id if scope is not None else None,
            "mindsearch.node_id": node_id,
            "mindsearch.step": step_name,
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": public_model_name(model.name),
        },
        client=True,
    )


def _call_outcome(exc: BaseException) -> tuple[ev.CallOutcome, str | None]:
    from ..llm.base import ReplyTruncated  # imported here: the backends import this module

    if isinstance(exc, ReplyTruncated):
        return "truncated", None
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return "cancelled", None
    return "error", brief(str(exc) or type(exc).__name__)


@_guarded("a model call")
def _call_ended(
    model: _Model,
    request: _Request,
    scope: RunScope | None,
    node_id: str | None,
    step_name: ev.ModelCallStep,
    started: float,
    first: float | None,
    received: list[str],
    outcome: ev.CallOutcome,
    error: str | None,
    span: Any,
) -> None:
    seconds = round(time.monotonic() - started, 3)
    usage = call_usage(request, "".join(received))
    name = public_model_name(model.name)
    metrics.model_call(
        name, step_name, outcome, seconds, first, usage.prompt_tokens, usage.completion_tokens, usage.source
    )
    run = scope.run_id if scope is not None else None
    record(
        "model_call",
        run_id=run,
        node_id=node_id,
        step=step_name,
        model=name,
        outcome=outcome,
        seconds=seconds,
        first_token_seconds=round(first, 3) if first is not None else None,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        usage_source=usage.source,
        error=error,
    )
    tracing.end(
        span,
        {
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "mindsearch.usage.source": usage.source,
            "mindsearch.outcome": outcome,
        },
        error=error,
    )
    if scope is not None:
        scope(
            ev.ModelCall(
                node_id=node_id,
                step=step_name,
                model=name,
                outcome=outcome,
                seconds=seconds,
                usage=usage,
                error=error,
            )
        )


def call_usage(request: _Request, reply: str) -> ev.Usage:
    """The call's tokens: the backend's counts where it has them, an estimate (marked) where not.

    A call that ended without a word of reply and without counts (refused, failed or cancelled before
    the model answered) is counted as nothing, and said to be an estimate.
    """
    meter = request.meter
    prompt, completion, source = meter.prompt_tokens, meter.completion_tokens, meter.source
    if prompt is not None and completion is not None and source is not None:
        return ev.Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            source=source,
        )
    if prompt is None:
        texts = [str(getattr(message, "content", "")) for message in request.messages]
        prompt = sum(estimate_tokens(text) + 3 for text in texts) if reply or completion else 0
    if completion is None:
        completion = estimate_tokens(reply)
    return ev.Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        source="estimate",
    )


def estimate_tokens(text: str) -> int:
    """About how many tokens ``text`` is for a current tokenizer: one per CJK character, one per four
    other characters."""
    wide = sum(1 for char in text if _is_wide(char))
    return wide + math.ceil((len(text) - wide) / 4)


def _is_wide(char: str) -> bool:
    code = ord(char)
    return (
        0x3040 <= code <= 0x30FF  # kana
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x2FFFF  # CJK extensions B-F
    )


# --- fetches, engine queries, the cache ----------------------------------------------------------
def observe_fetch(
    fetch: Callable[[S, str], Coroutine[Any, Any, T]],
) -> Callable[[S, str], Coroutine[Any, Any, T]]:
    """Decorate a fetcher's ``fetch(url)``: each fetch is timed, counted by outcome, logged and traced
    (with the URL's host; the log has the URL without its query)."""

    @functools.wraps(fetch)
    async def observed(self: S, url: str) -> T:
        scope, node_id = _RUN.get(), _NODE.get()
        started = time.monotonic()
        span = _start_span("mindsearch.fetch", scope, node_id, {"server.address": host_of(url)})
        try:
            page = await fetch(self, url)
        except BaseException as exc:
            _fetch_ended(scope, node_id, url, started, span, None, exc)
            raise
        _fetch_ended(scope, node_id, url, started, span, page, None)
        return page

    return observed


@_guarded("a span")
def _start_span(
    name: str, scope: RunScope | None, node_id: str | None, attributes: tracing.Attributes
) -> Any:
    parent = scope.node_span(node_id) if scope is not None else None
    run = scope.run_id if scope is not None else None
    return tracing.start(
        name, parent, {"mindsearch.run_id": run, "mindsearch.node_id": node_id, **attributes}, client=True
    )


@_guarded("a fetch")
def _fetch_ended(
    scope: RunScope | None,
    node_id: str | None,
    url: str,
    started: float,
    span: Any,
    page: Any,
    exc: BaseException | None,
) -> None:
    from ..web.fetch import BlockedURL  # imported here: fetch.py imports this module

    seconds = round(time.monotonic() - started, 3)
    error: str | None = None
    if exc is None:
        outcome = "ok"
    elif isinstance(exc, asyncio.CancelledError):
        outcome = "cancelled"
    else:
        outcome = "blocked" if isinstance(exc, BlockedURL) else "error"
        if str(exc).startswith("timed out"):
            outcome = "timeout"
        error = brief(str(exc) or type(exc).__name__)
    status = getattr(page, "status", None)
    chars = len(getattr(page, "text", "")) if page is not None else None
    metrics.page_fetch(outcome, seconds)
    record(
        "fetch",
        run_id=scope.run_id if scope is not None else None,
        node_id=node_id,
        host=host_of(url),
        url=bare_url(url),
        outcome=outcome,
        seconds=seconds,
        status=status,
        chars=chars,
        truncated=getattr(page, "truncated", None) or None,
        error=error,
    )
    tracing.end(
        span,
        {"mindsearch.outcome": outcome, "http.response.status_code": status, "mindsearch.chars": chars},
        error=error if outcome != "cancelled" else None,
    )


def wait_for_engine(engine: str) -> Callable[[Awaitable[T], float], Awaitable[T]]:
    """``asyncio.wait_for`` for one query to ``engine``: ``wait_for_engine(name)(search, timeout)``."""

    async def wait_for(work: Awaitable[T], timeout: float) -> T:
        return await searched(engine, asyncio.wait_for(work, timeout))

    return wait_for


async def searched(engine: str, work: Awaitable[T]) -> T:
    """Await one engine's answer to one query (``work``, its timeout included): timed, counted by
    outcome (ok, error, timeout, cancelled), logged and traced."""
    scope, node_id = _RUN.get(), _NODE.get()
    started = time.monotonic()
    span = _start_span("mindsearch.search", scope, node_id, {"mindsearch.engine": engine})
    try:
        result = await work
    except BaseException as exc:
        _search_ended(scope, node_id, engine, started, span, None, exc)
        raise
    _search_ended(scope, node_id, engine, started, span, result, None)
    return result


@_guarded("an engine query")
def _search_ended(
    scope: RunScope | None,
    node_id: str | None,
    engine: str,
    started: float,
    span: Any,
    result: Any,
    exc: BaseException | None,
) -> None:
    seconds = round(time.monotonic() - started, 3)
    error: str | None = None
    if exc is None:
        outcome = "ok"
    elif isinstance(exc, asyncio.CancelledError):
        outcome = "cancelled"
    elif isinstance(exc, asyncio.TimeoutError):
        outcome, error = "timeout", "no answer in time"
    else:
        outcome, error = "error", brief(str(exc) or type(exc).__name__)
    hits = len(result) if isinstance(result, list) else None
    metrics.engine_query(engine, outcome, seconds)
    record(
        "engine_query",
        run_id=scope.run_id if scope is not None else None,
        node_id=node_id,
        engine=engine,
        outcome=outcome,
        seconds=seconds,
        hits=hits,
        error=error,
    )
    tracing.end(span, {"mindsearch.outcome": outcome, "mindsearch.hits": hits}, error=error)


def cache_lookup(kind: str, hit: bool) -> None:
    """One lookup in the search and page cache (``kind``: search or page)."""
    metrics.cache_lookup(kind, hit)


# --- setup ---------------------------------------------------------------------------------------
def setup(settings: Any, *, server: bool = False) -> None:
    """Configure logs (``MINDSEARCH_LOG_FORMAT``, ``MINDSEARCH_LOG_LEVEL``; JSON for a server), the
    secrets logs and spans never show, and span export from the OTEL_* environment variables."""
    from .. import _logs as logs
    from .redact import remember

    remember(secrets_of(settings))
    logs.apply_settings(settings, server=server)
    tracing.configure_from_env()


def secrets_of(settings: Any) -> list[str]:
    """The keys in ``settings``: what no log line, span or client may ever show."""
    names = ("api_key", "llm_api_key", "brave_api_key", "serper_api_key", "tavily_api_key")
    found = [getattr(settings, name, None) for name in names]
    found += list(getattr(settings, "api_keys", None) or [])
    return [secret for secret in found if isinstance(secret, str) and secret]


__all__ = [
    "REQUEST_ID",
    "RunScope",
    "cache_lookup",
    "call_usage",
    "enter_node",
    "enter_step",
    "estimate_tokens",
    "model_call",
    "observe_fetch",
    "public_model_name",
    "record",
    "run_id",
    "searched",
    "setup",
    "start_run",
    "step",
    "wait_for_engine",
]

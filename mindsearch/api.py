"""The REST API: server-sent events of the engine's event stream, an OpenAI-compatible chat endpoint,
MindSearch's ``/solve``, and ``/health``. It renders the event stream; it does not run the pipeline itself.

``serve`` (what ``python serve.py`` and ``mindsearch serve`` run) starts this app on uvicorn with the
connection limits: a deadline for a request's headers, for its body, for idle keep-alive connections,
a cap on connections and on header size. docs/security.md lists every guard and its test.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, TypeVar

import anyio
import h11
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import __version__
from . import _logs as logs
from . import events as ev
from ._api_documents import add_document_routes, check_collections
from ._api_runs import FinishedRuns, RunRecorder, add_run_routes
from ._documents import OWNER
from ._run import OWN_ERROR_MESSAGES, MindSearch
from ._sessions import OPEN, owner_of
from ._store import open_store
from ._telemetry import REQUEST_ID, metrics
from ._telemetry.redact import redact as redact  # re-exported: the API's redaction is telemetry's
from ._telemetry.redact import remember
from .citations import reference_list
from .options import RunOptions
from .plugins import ENGINES
from .search.base import TIME_RANGES, is_scope_note
from .settings import Settings
from .state import RunState, RunUsage

log = logging.getLogger("mindsearch.api")
T = TypeVar("T")

MODEL_ID = "mindsearch"


class SearchOptions(RunOptions):
    """What one request may change: the per-run options, each at most the server's own setting, and
    only engines the server has enabled. Anything else is refused (422), never ignored. The API's
    schema lists the server's enabled engines as the enum of ``engines`` (``with_engine_enum``)."""


class EngineInfo(BaseModel):
    name: str
    enabled: bool = Field(description="Whether this server searches it: settings.engines may name it.")
    package: str = Field(description="The package that registers it: mindsearch, or a plugin's.")
    time_ranges: list[str] | None = Field(
        None, description="The time ranges it honours (for enabled engines; [] for none)."
    )
    search_language: bool | None = Field(
        None, description="Whether it takes a search language (for enabled engines)."
    )


class EngineList(BaseModel):
    """``GET /v1/engines``: every registered engine, and those this server has enabled."""

    enabled: list[str] = Field(description="What a run searches unless settings.engines names fewer.")
    engines: list[EngineInfo]


def with_engine_enum(schema: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The OpenAPI schema with the enum of ``SearchOptions.engines`` set to ``names``."""
    for title, component in schema.get("components", {}).get("schemas", {}).items():
        if not title.startswith("SearchOptions"):  # SearchOptions, or -Input and -Output when split
            continue
        for variant in component.get("properties", {}).get("engines", {}).get("anyOf", []):
            if variant.get("type") == "array":
                variant["items"] = {"type": "string", "enum": list(names)}
    return schema


SESSION_ID = r"^[A-Za-z0-9_.:\-]{1,128}$"
SessionId = Annotated[str, Field(pattern=SESSION_ID)]
SESSION_HELP = (
    "A session id this server issued (the X-Session-Id header of an earlier reply) continues that "
    "conversation; any other id, or none, starts a new session, whose id the reply carries."
)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, description="The question; its length limit is a server setting.")
    session_id: SessionId | None = Field(None, description=SESSION_HELP)
    settings: SearchOptions | None = None
    stream: bool = Field(True, description="Server-sent events; false returns one JSON object at the end.")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(str(part.get("text", "")) for part in self.content if isinstance(part, dict))
        return self.content or ""


class SolveRequest(BaseModel):
    """MindSearch's request body, so its clients keep working."""

    model_config = ConfigDict(extra="allow")
    inputs: str | list[ChatMessage] = Field(description="The question, or chat messages ending with it.")
    # MindSearch's clients send a counter; ``true`` is not an id (strict: no bool-to-int aliasing)
    session_id: Annotated[int, Strict(), Field(ge=0, le=2**63 - 1)] | SessionId | None = Field(
        None, description=SESSION_HELP
    )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = Field(
        False, description="End the stream with a chunk that has no choices and the run's token usage."
    )


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None


class GraphNode(BaseModel):
    id: str
    question: str
    depends_on: list[str]
    state: Literal["waiting", "running", "done", "failed"]
    answer: str = ""
    references: list[ev.Reference] = Field(default_factory=list)
    error: str | None = None


class SearchResult(BaseModel):
    """The non-streaming reply of /v1/search."""

    question: str
    answer: str
    references: list[ev.Reference]
    graph: list[GraphNode]
    errors: list[str]
    ok: bool
    seconds: float
    session_id: str = Field(
        "", description="The session this turn belongs to (also the X-Session-Id header)."
    )
    usage: RunUsage = Field(
        default_factory=RunUsage, description="The tokens of every model call of the run, summed."
    )
    run_id: str = Field("", description="The run, for GET /v1/runs/{run_id}/export.")


# --- what clients are told ------------------------------------------------------------------------
# Error text comes from upstream servers (an LLM server's 401 echoes the key it was sent), from model
# replies and from pages: clients get one stable message per stage; the detail goes to the server log
# under the request's X-Request-Id.
SEE_LOG = " (the server log has the details)"
PUBLIC_ERRORS: dict[str, str] = {
    "settings": "the run's options could not be used",
    "plan": "the planner's reply could not be used",
    "search": "a search engine failed",
    "fetch": "a page could not be read",
    "node": "a sub-question could not be answered",
    "answer": "the final answer could not be completed",
    "llm": "the language model could not be used",
    "run": "the run stopped on an internal error",
}
PUBLIC_FIELD_ERRORS: dict[tuple[str, str], str] = {
    ("node_done", "error"): "this sub-question could not be answered" + SEE_LOG,
    ("page_read", "error"): "the page could not be read",
    ("run_started", "rewrite_error"): "the follow-up could not be rewritten; it was searched as asked",
    ("plan", "recovered_from"): "the planner's reply had to be repaired",
    ("model_call", "error"): "the model call failed" + SEE_LOG,
}


def public_model_name(name: str) -> str:
    """``openai:model@http://host/v1`` as ``openai:model``: where the model runs is not for clients."""
    return name.split("@", 1)[0]


def bearer_token(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def check_text(text: str, what: str) -> None:
    """Refuse (422) text that cannot be sent back as UTF-8: a lone surrogate (``"\ud800"`` in JSON)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise HTTPException(
            422, f"{what} is not valid Unicode: it holds a lone surrogate at position {exc.start}"
        ) from exc


class _Held:
    """One text stream (the answer, or a node's) passed on with known strings replaced: a tail that may
    be the start of a known string is held back until the next piece shows whether it is."""

    def __init__(self) -> None:
        self.pending = ""

    def feed(self, piece: str, known: dict[str, str]) -> str:
        self.pending = _replace_known(self.pending + piece, known)
        hold = _partial_tail(self.pending, known)
        out, self.pending = self.pending[: len(self.pending) - hold], self.pending[len(self.pending) - hold :]
        return out

    def flush(self, known: dict[str, str]) -> str:
        out, self.pending = _replace_known(self.pending, known), ""
        return out


def _replace_known(text: str, known: dict[str, str]) -> str:
    for raw in sorted(known, key=len, reverse=True):
        if raw in text:
            text = text.replace(raw, known[raw])
    return text


def _partial_tail(text: str, known: dict[str, str]) -> int:
    """The length of the longest end of ``text`` that begins some known string (without being it)."""
    longest = max((len(raw) for raw in known), default=0)
    firsts = {raw[0] for raw in known}
    for start in range(max(0, len(text) - longest + 1), len(text)):
        if text[start] in firsts and any(raw.startswith(text[start:]) for raw in known):
            return len(text) - start
    return 0


class RunRedactor:
    """What clients may see of one run's events.

    Error text becomes a stable message: ``error.message``, and any field named ``error``, ``*_error``
    or ``recovered_from`` (the detail goes to the server log under the request id). The raw text of
    those errors and the server's secrets are also replaced wherever they reappear in an answer (the
    writer's fallback quotes node errors), streamed or whole; the model's address leaves ``run_started``.
    """

    MIN_KNOWN = 12  # shorter error texts ("timed out") are common words, not secrets

    def __init__(self, secrets: list[str], request_id: str) -> None:
        self.request_id = request_id
        self.secrets: dict[str, str] = {secret: "[redacted]" for secret in secrets if len(secret) >= 4}
        self.known: dict[str, str] = dict(self.secrets)
        self.streams: dict[str | None, _Held] = {}

    def public(self, event: ev.Event) -> list[ev.Event]:
        out: list[ev.Event] = []
        if isinstance(event, ev.AnswerDelta | ev.NodeAnswerDelta):
            key = event.node_id if isinstance(event, ev.NodeAnswerDelta) else None
            text = self.streams.setdefault(key, _Held()).feed(event.text, self.known)
            return [event.model_copy(update={"text": text})] if text else []
        if isinstance(event, ev.NodeDone):  # the node's held-back text goes out before it ends
            out += self._flush(event.node_id)
        elif isinstance(event, ev.References | ev.Done):
            out += self._flush(None)
        updates: dict[str, Any] = {}
        for name in type(event).model_fields:
            value = getattr(event, name)
            if not isinstance(value, str) or not value:
                continue
            if isinstance(event, ev.Error) and name == "message" and is_scope_note(value):
                continue  # "local: cannot limit results to the past week; ...": ours, names and codes only
            if isinstance(event, ev.Error) and name == "message" and value in OWN_ERROR_MESSAGES:
                continue  # a fixed sentence of ours: the honest reason, with nothing from outside in it
            if isinstance(event, ev.Error) and name == "message":
                where = f" ({event.node_id})" if event.node_id else ""
                log.warning("request %s: %s error%s: %s", self.request_id, event.stage, where, value)
                updates[name] = PUBLIC_ERRORS.get(event.stage, "something failed") + SEE_LOG
                self._learn(value, updates[name])
            elif name == "error" or name.endswith("_error") or name == "recovered_from":
                log.info("request %s: %s.%s: %s", self.request_id, event.type, name, value)
                updates[name] = PUBLIC_FIELD_ERRORS.get((event.type, name), "something failed" + SEE_LOG)
                if event.type != "page_read":  # page errors are ours and short ("HTTP 404")
                    self._learn(value, updates[name])
        if isinstance(event, ev.NodeDone | ev.Done):
            updates["answer"] = _replace_known(event.answer, self.known)
        if isinstance(event, ev.SectionDelta | ev.SectionDone):  # a report's text, as the answer's
            updates["text"] = _replace_known(event.text, self.known)
        if isinstance(event, ev.RunStarted):
            updates["llm"] = public_model_name(event.llm)
        return [*out, event.model_copy(update=updates) if updates else event]

    def _learn(self, raw: str, public: str) -> None:
        if len(raw) < self.MIN_KNOWN:
            return
        # also in the form a stream holds it once a secret inside it has been replaced
        for form in (raw, _replace_known(raw, self.secrets)):
            self.known.setdefault(form, public)

    def _flush(self, key: str | None) -> list[ev.Event]:
        held = self.streams.pop(key, None)
        text = held.flush(self.known) if held is not None else ""
        if not text:
            return []
        return [ev.NodeAnswerDelta(node_id=key, text=text) if key is not None else ev.AnswerDelta(text=text)]


# --- the app ---------------------------------------------------------------------------------------
class Server:
    """What the routes share: one engine (one model, one fetcher), the sessions, and the run counter."""

    HEALTH_CACHE = 5.0  # seconds a /health report is reused: anyone may ask, the checks cost requests

    def __init__(self, settings: Settings, engine: MindSearch | None) -> None:
        self.settings = settings
        self.engine = engine or MindSearch(settings)
        self.store = open_store(settings)  # SQLite, or Redis with MINDSEARCH_REDIS_URL
        self.sessions = self.store.sessions
        self.fleet: Any = None  # scale.fleet.Fleet: runs are queued jobs (MINDSEARCH_REDIS_URL)
        self.store_down = "the API keys cannot be checked now; try again shortly"
        if settings.redis_url:
            from ._scale.fleet import Fleet, redis_down_message

            self.fleet = Fleet(settings, self.store)
            self.store_down = redis_down_message(settings)
        self.active = 0
        self.keys = [key for key in (settings.api_key, *settings.api_keys) if key]
        self.secrets = [
            secret
            for secret in (
                *self.keys,
                settings.llm_api_key,
                settings.brave_api_key,
                settings.serper_api_key,
                settings.tavily_api_key,
            )
            if secret
        ]
        self._health: tuple[float, dict[str, Any]] | None = None
        self.finished_runs = FinishedRuns(settings.runs_kept)  # for export (api_runs.py)

    def reserve(self) -> Callable[[], None]:
        """Take a run slot or raise 503; the returned function gives it back (once)."""
        if self.active >= self.settings.max_concurrent_runs:
            raise HTTPException(
                503,
                f"the server is running {self.active} questions, its limit (MINDSEARCH_MAX_CONCURRENT_RUNS); "
                "try again shortly",
                headers={"Retry-After": str(self.settings.busy_retry_after)},
            )
        self.active += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.active -= 1

        return release

    def check_question(self, question: str) -> str:
        check_text(question, "the question")
        question = question.strip()
        if not question:
            raise HTTPException(422, "the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise HTTPException(
                413,
                f"the question has {len(question)} characters; this server accepts at most "
                f"{self.settings.max_question_chars}",
            )
        return question

    def options(self, requested: SearchOptions | None) -> RunOptions:
        """Per-request options, refused (422) when they pass the server's bounds."""
        if requested is None:
            return RunOptions()
        s = self.settings
        for name, value in requested.changes().items():
            if name == "engines":
                extra = [e for e in value if e not in s.engines]
                if extra:
                    raise HTTPException(
                        422,
                        f"settings.engines: {', '.join(extra)} not enabled on this server "
                        f"(it searches {', '.join(s.engines)})",
                    )
            elif name in ("language", "search_language", "time_range", "collections"):
                continue  # what is searched, not how much
            elif name.startswith("citation_"):
                continue  # stricter or looser checks cost the server nothing
            elif value > getattr(s, name):
                raise HTTPException(422, f"settings.{name} may be at most {getattr(s, name)} on this server")
        try:
            requested.apply(s)
        except ValidationError as exc:
            raise HTTPException(422, "; ".join(str(e["msg"]) for e in exc.errors())) from exc
        return requested

    # -- callers and their sessions ------------------------------------------------------------------
    async def owner(self, request: Request) -> str:
        """Whom the caller's sessions and runs belong to: its bearer token's digest, or ``OPEN`` on a
        server without keys (neither operator keys nor `mindsearch keys add` ones)."""
        if not self.keys and not await self.store.keys.any():
            return OPEN
        return owner_of(bearer_token(request.headers.get("authorization", "")))

    async def accepts(self, token: str | None) -> bool:
        """Whether ``token`` may call the API: an operator key, a user key, or any on an open server."""
        if key_matches(token, self.keys):
            return True
        if token is not None and await self.store.keys.verify(token) is not None:
            return True
        return not self.keys and not await self.store.keys.any()

    def authorised(self, request: Request) -> bool:
        """Whether the caller sent one of the server's keys (never true on a server without one)."""
        return key_matches(bearer_token(request.headers.get("authorization", "")), self.keys)

    async def find_session(
        self, requested: str | None, owner: str, *, foreign: Literal["404", "new"]
    ) -> tuple[str | None, list[tuple[str, str]]]:
        """The caller's live session and its history; ``(None, [])`` when a new one is to be issued.

        An id the server did not issue (or that expired) never joins a conversation; another caller's
        session is a 404 (``foreign="404"``) or, for clients that send counters, a new session.
        """
        if requested is None:
            return None, []
        found = await self.sessions.lookup(requested, owner)
        if found == "ok":
            await self.sessions.touch(requested)
            return requested, await self.sessions.history(requested)
        if found == "foreign" and foreign == "404":
            raise HTTPException(404, "no such session")
        return None, []

    async def start(
        self, session: str | None, owner: str
    ) -> tuple[Callable[[], None], str, dict[str, str], str]:
        """A run slot (503 beyond the cap), the session (issued now when new), the reply's headers and
        the request id the server log uses."""
        release = self.reserve()
        try:
            session = session or await self.sessions.issue(owner)
        except BaseException:
            release()
            raise
        request_id = uuid.uuid4().hex[:16]
        return release, session, {"X-Session-Id": session, "X-Request-Id": request_id}, request_id

    # -- the run -------------------------------------------------------------------------------------
    async def events(
        self,
        question: str,
        history: list[tuple[str, str]],
        options: RunOptions,
        session: str | None,
        request_id: str,
        owner: str = OPEN,
    ) -> AsyncIterator[ev.Event]:
        """The engine's events as clients may see them (``RunRedactor``); the finished turn is stored in
        the session, as the standalone question."""
        standalone = question
        redactor = RunRedactor(self.secrets, request_id)
        REQUEST_ID.set(request_id)  # the run's log record and span name the request
        OWNER.set(owner)  # whose collections of documents the run may search
        recorder = RunRecorder(self.finished_runs, owner)
        async for event in self.engine.stream(question, history, options=options):
            recorder.see(event)
            if isinstance(event, ev.RunStarted):
                standalone = event.question
            if isinstance(event, ev.Done) and session and event.ok:
                await self.sessions.append(session, standalone, event.answer)
            for public in redactor.public(event):
                yield public

    # -- engines ---------------------------------------------------------------------------------------
    async def engine_list(self) -> EngineList:
        """Every registered engine; the enabled ones with what they honour (when they can be built)."""
        enabled = list(self.settings.engines)
        try:
            built = {engine.name: engine for engine in self.engine.engines_for(self.settings)}
        except Exception as exc:  # an engine that cannot be built is the run's error, not this route's
            log.warning("the engines could not be built for /v1/engines: %s: %s", type(exc).__name__, exc)
            built = {}
        infos = []
        for name in dict.fromkeys([*enabled, *ENGINES.names()]):
            plugin = ENGINES.plugin(name)
            engine = built.get(name) if name in enabled else None
            infos.append(
                EngineInfo(
                    name=name,
                    enabled=name in enabled,
                    package=plugin.package if plugin is not None else "mindsearch",
                    time_ranges=[r for r in TIME_RANGES if r in engine.time_ranges] if engine else None,
                    search_language=engine.takes_language if engine is not None else None,
                )
            )
        return EngineList(enabled=enabled, engines=infos)

    # -- health ----------------------------------------------------------------------------------------
    async def health_report(self, *, cached: bool = False) -> dict[str, Any]:
        """Whether the LLM and each engine answer, with details (secrets and URLs' user info removed).
        ``cached``: a report up to HEALTH_CACHE seconds old will do (for callers without the token)."""
        if cached and self._health is not None and time.monotonic() - self._health[0] < self.HEALTH_CACHE:
            return self._health[1]
        settings = self.settings
        report: dict[str, Any] = {"status": "ok", "version": __version__}
        try:
            model = self.engine.model
            await model.ready()
            report["llm"] = {"backend": settings.llm, "ok": True, "detail": model.name}
        except Exception as exc:  # any failure here is the report, not a crash
            report["llm"] = {"backend": settings.llm, "ok": False, "detail": str(exc)}
        engines: dict[str, Any] = {}
        for engine in self.engine.engines_for(settings):
            try:
                ok, detail = await engine.check()
            except Exception as exc:  # an engine's check must not break the health route
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            engines[engine.name] = {"ok": ok, "detail": detail}
        report["engines"] = engines
        for part in [report["llm"], *engines.values()]:
            part["detail"] = redact(str(part["detail"]), self.secrets)[:300]
        if self.fleet is not None:
            report.update(await self.fleet.health())
        if not report["llm"]["ok"] or not report.get("redis", {"ok": True})["ok"]:
            report["status"] = "down"
        elif not all(e["ok"] for e in engines.values()) or report.get("queue", {}).get("workers") == 0:
            report["status"] = "degraded"
        self._health = (time.monotonic(), report)
        return report


class EventStreamResponse(StreamingResponse):
    """A streaming response that notices a client going away at once (not at its next write), so the
    run is cancelled, and that gives its run slot back however it ends."""

    def __init__(
        self, content: AsyncIterator[str], release: Callable[[], None], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
        )
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream_then_stop() -> None:
                    await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(stream_then_stop)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            self.release()


async def until_disconnect(request: Request, work: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
    """Run ``work`` while watching the connection: ``(True, result)``, or ``(False, None)`` when the
    client hung up first, in which case ``work`` was cancelled (and with it the run)."""
    outcome: list[T] = []
    failure: list[BaseException] = []
    async with anyio.create_task_group() as group:

        async def run() -> None:
            try:
                outcome.append(await work())
            except Exception as exc:  # raised again below, outside the task group
                failure.append(exc)
            group.cancel_scope.cancel()

        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(run)
        group.start_soon(watch)
    if failure:
        raise failure[0]
    return (True, outcome[0]) if outcome else (False, None)


def sse(event: ev.Event) -> str:
    return f"event: {event.type}\ndata: {event.model_dump_json()}\n\n"


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether or not they declare their length, bodies
    not sent within ``timeout`` seconds with 408 (a client that trickles its body holds no slot), and
    request lines and headers over ``header_limit`` bytes with 431 (uvicorn's h11 limit only catches
    headers that arrive in pieces)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        timeout: float = 30.0,
        header_limit: int = 16384,
        paths: dict[str, int] | None = None,
    ) -> None:
        self.app, self.limit, self.timeout, self.header_limit = app, limit, timeout, header_limit
        self.paths = paths or {}  # routes with a limit of their own (uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        close = {"Connection": "close"}
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        size += sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))
        if size > self.header_limit:
            return await _json_error(
                send, 431, f"the request line and headers are larger than {self.header_limit} bytes", close
            )
        limit = self.paths.get(scope.get("path", ""), self.limit)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _json_error(send, 413, f"the request body is larger than {limit} bytes", close)
        # Bodies are small (kilobytes; an upload's megabytes): read the whole body first, then replay it.
        buffer, more = bytearray(), True
        with anyio.move_on_after(self.timeout) as deadline:
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client left
                buffer += message.get("body", b"")
                more = message.get("more_body", False)
                if len(buffer) > limit:
                    return await _json_error(
                        send, 413, f"the request body is larger than {limit} bytes", close
                    )
        body = bytes(buffer)
        if deadline.cancelled_caught:
            return await _json_error(
                send, 408, f"the request body did not arrive within {self.timeout:g} s", close
            )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as Starlette expects

        await self.app(scope, replay, send)


def key_matches(token: str | None, keys: list[str]) -> bool:
    """Whether ``token`` is one of ``keys``, each compared in constant time."""
    if token is None:
        return False
    found = False
    for key in keys:
        found |= hmac.compare_digest(token.encode("utf-8", "surrogatepass"), key.encode())
    return found


class BearerAuth:
    """Every route but /health needs ``Authorization: Bearer <key>`` (``MINDSEARCH_API_KEY``, one of
    ``MINDSEARCH_API_KEYS``, or a user key from ``mindsearch keys add``) when any key is set."""

    def __init__(
        self,
        app: ASGIApp,
        keys: list[str],
        accepts: Callable[[str | None], Awaitable[bool]] | None = None,
        unavailable: str = "the API keys cannot be checked now; try again shortly",
    ) -> None:
        self.app, self.keys, self.accepts, self.unavailable = app, keys, accepts, unavailable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or (not self.keys and self.accepts is None)
            or scope["path"] == "/health"
            or scope["method"] == "OPTIONS"
        ):
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        token = bearer_token(header)
        try:
            accepted = key_matches(token, self.keys) or (
                self.accepts is not None and await self.accepts(token)
            )
        except Exception as exc:  # the key store (Redis) cannot be asked: refuse, saying it is ours
            log.warning("the API keys could not be checked: %s: %s", type(exc).__name__, exc)
            return await _json_error(send, 503, self.unavailable)
        if not accepted:
            return await _json_error(
                send,
                401,
                "missing or wrong API key: send Authorization: Bearer <key>",
                {"WWW-Authenticate": "Bearer"},
            )
        await self.app(scope, receive, send)


async def _json_error(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": {"message": message, "status": status}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def allowed_hosts(settings: Settings) -> list[str]:
    """The Host header values the server answers to: the setting, or where it listens and loopback.
    IPv6 literals are written as the Host header carries them, in brackets."""

    def as_header(host: str) -> str:
        host = host.strip().lower()
        try:
            ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            return host
        return f"[{host.strip('[]')}]"

    chosen = settings.allowed_hosts or [settings.host, "localhost", "127.0.0.1", "::1"]
    return list(dict.fromkeys(as_header(host) for host in chosen))


def create_app(settings: Settings | None = None, *, engine: MindSearch | None = None) -> FastAPI:
    settings = settings or Settings()
    server = Server(settings, engine)
    remember(server.secrets)  # never in a log line or a span either

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if server.fleet is not None:
            await server.fleet.start()
        yield
        if server.fleet is not None:
            await server.fleet.stop()
        await server.engine.aclose()
        await server.store.close()
        documents.close()

    app = FastAPI(
        title="mindsearch",
        version=__version__,
        description="A self-hosted AI search engine. Events are documented in docs/events.md.",
        lifespan=lifespan,
    )
    app.state.server = server
    plain_openapi = app.openapi
    app.openapi = lambda: with_engine_enum(plain_openapi(), settings.engines)  # type: ignore[method-assign]

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": exc.detail, "status": exc.status_code}},
            exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        ]
        return JSONResponse({"error": {"message": "; ".join(parts[:5]), "status": 422}}, 422)

    session_header = {
        "X-Session-Id": {"description": "The session of this turn: send it back to continue.", "schema": {}}
    }

    @app.post(
        "/v1/search",
        response_model=SearchResult,
        responses={200: {"content": {"text/event-stream": {}}, "headers": session_header}},
    )
    async def search(body: SearchRequest, request: Request) -> Response:
        """Answer a question: server-sent events (``event:`` type, ``data:`` JSON), or one JSON object."""
        question = server.check_question(body.question)
        options = server.options(body.settings)
        owner = await server.owner(request)
        check_collections(request, owner, options.collections)
        session, history = await server.find_session(body.session_id, owner, foreign="404")
        if server.fleet is not None:  # a queued run, on any worker of the fleet (scale.fleet)
            from ._scale.fleet import search_reply

            session = session or await server.sessions.issue(owner)
            request_id = uuid.uuid4().hex[:16]
            run = await server.fleet.submit(question, history, options, session, owner, request_id)
            headers = {"X-Session-Id": session, "X-Request-Id": request_id}
            return await search_reply(server, server.fleet, run, headers, body.stream)
        release, session, headers, request_id = await server.start(session, owner)
        events = server.events(question, history, options, session, request_id, owner)
        if body.stream:
            return EventStreamResponse((sse(event) async for event in events), release, headers)
        try:
            finished, result = await until_disconnect(request, lambda: collect(events))
        finally:
            release()
        if not finished or result is None:
            return Response(status_code=499)  # the client has gone: nothing is sent
        return JSONResponse(result.model_copy(update={"session_id": session}).model_dump(), headers=headers)

    @app.post("/solve", responses={200: {"content": {"text/event-stream": {}}, "headers": session_header}})
    async def solve(body: SolveRequest, request: Request) -> Response:
        """MindSearch's route: ``{"inputs": "...", "session_id": ...}``; streams the events of /v1/search."""
        history: list[tuple[str, str]] = []
        if isinstance(body.inputs, str):
            question = body.inputs
        else:
            question, history = split_chat(body.inputs)
        question = server.check_question(question)
        owner = await server.owner(request)
        requested = str(body.session_id) if body.session_id is not None else None
        session, stored = await server.find_session(requested, owner, foreign="new")
        if server.fleet is not None:  # a queued run (scale.fleet); its events carry ids
            session = session or await server.sessions.issue(owner)
            request_id = uuid.uuid4().hex[:16]
            run = await server.fleet.submit(
                question, history or stored, RunOptions(), session, owner, request_id
            )
            ids = {"X-Session-Id": session, "X-Request-Id": request_id, "X-Run-Id": run}
            return server.fleet.stream(run, ids)  # type: ignore[no-any-return]
        release, session, headers, request_id = await server.start(session, owner)
        events = server.events(question, history or stored, RunOptions(), session, request_id, owner)
        return EventStreamResponse((sse(event) async for event in events), release, headers)

    documents = add_document_routes(app, server)  # POST/GET/DELETE /v1/documents (api_documents.py)
    add_run_routes(app, server)  # GET /v1/runs/{id}/export (api_runs.py)

    @app.get("/v1/engines", response_model=EngineList)
    async def engines() -> EngineList:
        """The search engines this server knows (built-ins and installed plugins) and those it has
        enabled, with what each enabled one can honour; a request's ``settings.engines`` may name only
        enabled ones."""
        return await server.engine_list()

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "mindsearch"}],
        }

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request) -> Response:
        """OpenAI-compatible: the last user message is the question, earlier turns its history."""
        question, history = split_chat(body.messages)
        question = server.check_question(question)
        request_id = uuid.uuid4().hex[:16]
        owner = await server.owner(request)
        if server.fleet is not None:  # a queued run (scale.fleet), read back from its event stream
            run = await server.fleet.submit(question, history, RunOptions(), "", owner, request_id)
            release: Callable[[], None] = lambda: None  # noqa: E731 - the worker holds the fleet's slot
            events = server.fleet.events(run)
        else:
            release = server.reserve()
            events = server.events(question, history, RunOptions(), None, request_id, owner)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        headers = {"X-Request-Id": request_id}
        if body.stream:
            usage = body.stream_options is not None and body.stream_options.include_usage
            return EventStreamResponse(openai_chunks(events, completion_id, usage), release, headers)
        try:
            finished, result = await until_disconnect(request, lambda: collect(events))
        finally:
            release()
        if not finished or result is None:
            return Response(status_code=499)  # the client has gone: nothing is sent
        if not result.answer:
            raise HTTPException(502, "; ".join(result.errors) or "no answer", headers=headers)
        text = with_references(result.answer, result.references)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL_ID,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": result.usage.openai(),  # every model call of the run: its real cost
            },
            headers=headers,
        )

    @app.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def prometheus_metrics() -> Response:
        """Prometheus metrics of this server (text format): runs by outcome, run, node and model-call
        latency, tokens by model, engine queries and page fetches by outcome, cache hits and misses,
        runs in progress. Needs the bearer token, like every route but /health, when a key is set."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        """``{"status": "ok"}`` (200) or ``{"status": "down"}`` (503, the LLM cannot be reached); with the
        server's bearer token also the version, the LLM and each engine with details."""
        authorised = server.authorised(request)
        report = await server.health_report(cached=not authorised)
        status = 503 if report["status"] == "down" else 200
        if not authorised:
            quiet = {"status": "ok" if status == 200 else "down"}
            if not report.get("redis", {"ok": True})["ok"]:  # the fleet's store: nothing secret in saying so
                quiet["reason"] = "the shared store (Redis) cannot be reached"
            return JSONResponse(quiet, status)
        return JSONResponse(report, status)

    app.add_middleware(
        BodyLimit,  # type: ignore[arg-type]
        limit=settings.max_body_bytes,
        paths={"/v1/documents": settings.upload_max_total_bytes},
        timeout=settings.body_timeout,
        header_limit=settings.max_header_bytes,
    )
    app.add_middleware(
        BearerAuth,  # type: ignore[arg-type]
        keys=server.keys,
        accepts=server.accepts,
        unavailable=server.store_down,
    )
    if server.fleet is not None:
        from ._scale.fleet import install

        install(app, server)
    if settings.cors_origins:
        wildcard = "*" in settings.cors_origins
        app.add_middleware(
            CORSMiddleware,  # type: ignore[arg-type]
            allow_origins=settings.cors_origins,
            allow_credentials=not wildcard,  # never "*" together with credentials
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["X-Session-Id", "X-Request-Id", "X-Run-Id"],
        )
    # outermost: a request for a host name this server is not (DNS rebinding) gets 400 before anything
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings), www_redirect=False)  # type: ignore[arg-type]
    return app


# --- serving ---------------------------------------------------------------------------------------
class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's headers, counted from the connection (or
    from a kept-alive request's first byte): a client that trickles its headers is cut off with 408."""

    header_timeout = 10.0

    def connection_made(self, transport: Any) -> None:
        self._header_timer: Any = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # the headers of a (next) request are on their way
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        # their IDLE state means no request is being answered: both sides are between requests
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            body = b"the request headers did not arrive in time"
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            self.transport.close()


def server_config(settings: Settings, app: ASGIApp | None = None, **overrides: Any) -> Any:
    """The uvicorn configuration ``serve`` runs: the app with every connection limit of ``settings``."""
    import uvicorn

    protocol = type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout": settings.header_timeout})
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "http": protocol,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "server_header": False,
        **({"log_config": None} if logs.is_json() else {}),  # uvicorn's lines as JSON lines too
        **overrides,
    }
    return uvicorn.Config(app if app is not None else create_app(settings), **options)


def serve(settings: Settings) -> None:
    """Run the server until it is stopped (what ``python serve.py`` and ``mindsearch serve`` do)."""
    import uvicorn

    keyed = settings.api_key or settings.api_keys
    auth = "with a bearer token" if keyed else "open (set MINDSEARCH_API_KEY to require a token)"
    said = f"mindsearch serving on http://{settings.host}:{settings.port} ({auth}); API docs at /docs"
    if logs.is_json():
        log.warning("%s", said)  # a JSON log stays JSON lines
    else:
        print(said, file=sys.stderr)
    uvicorn.Server(server_config(settings)).run()


def split_chat(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message, and the (user, assistant) pairs before it."""
    turns: list[tuple[str, str]] = []
    pending: str | None = None
    question = ""
    for index, message in enumerate(messages):
        if message.role == "user":
            if index == len(messages) - 1 or all(m.role != "user" for m in messages[index + 1 :]):
                question = message.text
            else:
                pending = message.text
        elif message.role == "assistant" and pending is not None:
            turns.append((pending, message.text))
            pending = None
    if not question:
        raise HTTPException(422, "messages: the last message must come from the user")
    for asked, answered in turns:
        check_text(asked, "a message")
        check_text(answered, "a message")
    return question, turns


async def collect(events: AsyncIterator[ev.Event]) -> SearchResult:
    """The whole run as one reply, read from the run's state once ``done`` arrives."""
    state = RunState()
    async for event in events:
        state.apply(event)
        if state.finished:
            break
    else:
        raise HTTPException(500, "the run ended without an answer")
    return SearchResult(
        question=state.question,
        answer=state.answer,
        references=state.references,
        graph=[
            GraphNode(
                id=node.id,
                question=node.question,
                depends_on=node.depends_on,
                state=node.state,
                answer=node.answer,
                references=node.references,
                error=node.error,
            )
            for node in state.nodes.values()
        ],
        errors=[f"{error.stage}: {error.message}" for error in state.errors],
        ok=state.ok,
        seconds=state.seconds,
        usage=state.usage,
        run_id=state.run_id,
    )


def with_references(answer: str, references: list[ev.Reference]) -> str:
    if not references:
        return answer
    return f"{answer}\n\nReferences:\n{reference_list(references)}"


async def openai_chunks(
    events: AsyncIterator[ev.Event], completion_id: str, include_usage: bool = False
) -> AsyncIterator[str]:
    """The answer as OpenAI ``chat.completion.chunk`` events, with the reference list at the end; with
    ``include_usage`` (the request's ``stream_options``), every chunk has ``usage: null`` and a last
    chunk without choices has the run's token usage, as OpenAI sends it."""
    created = int(time.time())
    usage = RunUsage()

    def chunk(delta: dict[str, str], finish: str | None = None, *, last: bool = False) -> str:
        payload: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": [] if last else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if include_usage:
            payload["usage"] = usage.openai() if last else None
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    wrote = False
    async for event in events:
        if isinstance(event, ev.ModelCall):
            usage.add(event)
        elif isinstance(event, ev.AnswerDelta):
            wrote = True
            yield chunk({"content": event.text})
        elif isinstance(event, ev.References) and event.references:
            yield chunk({"content": "\n\nReferences:\n" + reference_list(event.references)})
        elif isinstance(event, ev.Error) and event.fatal and not wrote:
            yield chunk({"content": f"Error: {event.message}"})
    yield chunk({}, "stop")
    if include_usage:
        yield chunk({}, last=True)
    yield "data: [DONE]\n\n"

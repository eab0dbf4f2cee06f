"""The REST API: server-sent events of the engine's event stream, an OpenAI-compatible chat endpoint,
MindSearch's ``/solve``, and ``/health``. It renders the event stream; it does not run the pipeline itself.

``serve.py`` and ``mindsearch serve`` only start this app on uvicorn.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from . import events as ev
from .citations import reference_list
from .options import RunOptions
from .run import MindSearch
from .sessions import SessionStore
from .settings import Settings
from .state import RunState

MODEL_ID = "mindsearch"


class SearchOptions(RunOptions):
    """What one request may change: the per-run options, each at most the server's own setting, and
    only engines the server has enabled. Anything else is refused (422), never ignored."""


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, description="The question; its length limit is a server setting.")
    session_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.:\-]{1,128}$", description="Turns of the same session are remembered."
    )
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
    session_id: int | str | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


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


# --- the app ---------------------------------------------------------------------------------------
class Server:
    """What the routes share: one engine (one model, one fetcher), the sessions, and the run counter."""

    def __init__(self, settings: Settings, engine: MindSearch | None) -> None:
        self.settings = settings
        self.engine = engine or MindSearch(settings)
        self.sessions = SessionStore(settings.data_dir / "sessions.sqlite3", settings.max_history_turns)
        self.active = 0

    def reserve(self) -> Callable[[], None]:
        """Take a run slot or raise 503; the returned function gives it back (once)."""
        if self.active >= self.settings.max_concurrent_runs:
            raise HTTPException(
                503,
                f"the server is running {self.active} questions, its limit (MINDSEARCH_MAX_CONCURRENT_RUNS); "
                "try again shortly",
                headers={"Retry-After": "5"},
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
            elif name in ("language",):
                continue
            elif name.startswith("citation_"):
                continue  # stricter or looser checks cost the server nothing
            elif value > getattr(s, name):
                raise HTTPException(422, f"settings.{name} may be at most {getattr(s, name)} on this server")
        try:
            requested.apply(s)
        except ValidationError as exc:
            raise HTTPException(422, "; ".join(str(e["msg"]) for e in exc.errors())) from exc
        return requested

    async def events(
        self, question: str, history: list[tuple[str, str]], options: RunOptions, session: str | None
    ) -> AsyncIterator[ev.Event]:
        """The engine's events; the finished turn is stored in the session, as the standalone question."""
        standalone = question
        async for event in self.engine.stream(question, history, options=options):
            if isinstance(event, ev.RunStarted):
                standalone = event.question
            if isinstance(event, ev.Done) and session and event.ok:
                self.sessions.append(session, standalone, event.answer)
            yield event


class EventStreamResponse(StreamingResponse):
    """A streaming response that notices a client going away at once (not at its next write), so the
    run is cancelled, and that gives its run slot back however it ends."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
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


def sse(event: ev.Event) -> str:
    return f"event: {event.type}\ndata: {event.model_dump_json()}\n\n"


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether or not they declare their length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _json_error(send, 413, f"the request body is larger than {self.limit} bytes")
        # Bodies are small (the limit is kilobytes): read the whole body first, then replay it.
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await _json_error(send, 413, f"the request body is larger than {self.limit} bytes")
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as Starlette expects

        await self.app(scope, replay, send)


class BearerAuth:
    """Every route but /health needs ``Authorization: Bearer <MINDSEARCH_API_KEY>`` when a key is set."""

    def __init__(self, app: ASGIApp, key: str | None) -> None:
        self.app, self.key = app, key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.key
            or scope["path"] == "/health"
            or scope["method"] == "OPTIONS"
        ):
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.key.encode()):
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


def create_app(settings: Settings | None = None, *, engine: MindSearch | None = None) -> FastAPI:
    settings = settings or Settings()
    server = Server(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await server.engine.aclose()
        server.sessions.close()

    app = FastAPI(
        title="mindsearch",
        version=__version__,
        description="A self-hosted AI search engine. Events are documented in docs/events.md.",
        lifespan=lifespan,
    )
    app.state.server = server

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

    @app.post(
        "/v1/search", response_model=SearchResult, responses={200: {"content": {"text/event-stream": {}}}}
    )
    async def search(body: SearchRequest) -> Response:
        """Answer a question: server-sent events (``event:`` type, ``data:`` JSON), or one JSON object."""
        question = server.check_question(body.question)
        options = server.options(body.settings)
        history = server.sessions.history(body.session_id) if body.session_id else []
        release = server.reserve()
        events = server.events(question, history, options, body.session_id)
        if body.stream:
            return EventStreamResponse((sse(event) async for event in events), release)
        try:
            result = await collect(events)
        finally:
            release()
        return JSONResponse(result.model_dump())

    @app.post("/solve")
    async def solve(body: SolveRequest) -> Response:
        """MindSearch's route: ``{"inputs": "...", "session_id": ...}``; streams the events of /v1/search."""
        history: list[tuple[str, str]] = []
        if isinstance(body.inputs, str):
            question = body.inputs
        else:
            question, history = split_chat(body.inputs)
        question = server.check_question(question)
        session = str(body.session_id) if body.session_id is not None else None
        if session and not history:
            history = server.sessions.history(session)
        release = server.reserve()
        events = server.events(question, history, RunOptions(), session)
        return EventStreamResponse((sse(event) async for event in events), release)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "mindsearch"}],
        }

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> Response:
        """OpenAI-compatible: the last user message is the question, earlier turns its history."""
        question, history = split_chat(body.messages)
        question = server.check_question(question)
        release = server.reserve()
        events = server.events(question, history, RunOptions(), None)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if body.stream:
            return EventStreamResponse(openai_chunks(events, completion_id), release)
        try:
            result = await collect(events)
        finally:
            release()
        if not result.answer:
            raise HTTPException(502, "; ".join(result.errors) or "no answer")
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
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        )

    @app.get("/health")
    async def health() -> JSONResponse:
        """Whether the LLM backend and each search engine can be reached (503 when the LLM cannot)."""
        report: dict[str, Any] = {"status": "ok", "version": __version__}
        try:
            model = server.engine.model
            await model.ready()
            report["llm"] = {"backend": settings.llm, "ok": True, "detail": model.name}
        except Exception as exc:  # any failure here is the report, not a crash
            report["llm"] = {"backend": settings.llm, "ok": False, "detail": str(exc)}
        engines: dict[str, Any] = {}
        for engine in server.engine.engines_for(settings):
            try:
                ok, detail = await engine.check()
            except Exception as exc:  # an engine's check must not break the health route
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            engines[engine.name] = {"ok": ok, "detail": detail}
        report["engines"] = engines
        if not report["llm"]["ok"]:
            report["status"] = "down"
        elif not all(e["ok"] for e in engines.values()):
            report["status"] = "degraded"
        return JSONResponse(report, 503 if report["status"] == "down" else 200)

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)  # type: ignore[arg-type]
    app.add_middleware(BearerAuth, key=settings.api_key)  # type: ignore[arg-type]
    if settings.cors_origins:
        wildcard = "*" in settings.cors_origins
        app.add_middleware(
            CORSMiddleware,  # type: ignore[arg-type]
            allow_origins=settings.cors_origins,
            allow_credentials=not wildcard,  # never "*" together with credentials
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


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
    )


def with_references(answer: str, references: list[ev.Reference]) -> str:
    if not references:
        return answer
    return f"{answer}\n\nReferences:\n{reference_list(references)}"


async def openai_chunks(events: AsyncIterator[ev.Event], completion_id: str) -> AsyncIterator[str]:
    """The answer as OpenAI ``chat.completion.chunk`` events, with the reference list at the end."""
    created = int(time.time())

    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    wrote = False
    async for event in events:
        if isinstance(event, ev.AnswerDelta):
            wrote = True
            yield chunk({"content": event.text})
        elif isinstance(event, ev.References) and event.references:
            yield chunk({"content": "\n\nReferences:\n" + reference_list(event.references)})
        elif isinstance(event, ev.Error) and event.fatal and not wrote:
            yield chunk({"content": f"Error: {event.message}"})
    yield chunk({}, "stop")
    yield "data: [DONE]\n\n"

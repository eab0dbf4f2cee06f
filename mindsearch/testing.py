"""Test doubles shipped with the library, so every test (ours and yours) uses the same ones.

- ``ScriptedModel``: a ChatModel whose replies come from a plain function, like httpx's MockTransport.
- ``MemoryEngine``: a SearchEngine over fixed hits, that can fail or be slow on purpose.
- ``FakeOpenAIServer``: a real aiohttp server on 127.0.0.1 speaking the OpenAI chat API (SSE streaming),
  replying from a function and recording every request with its start and end times.
- ``StaticSite``: a real aiohttp server on 127.0.0.1 serving pages from a folder or from a function.
- ``block_real_models``: makes building a real backend fail, so a test cannot call one by accident.
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from aiohttp import web

from ._graph import PlanAction
from .llm.base import ChatModel, LLMError, ModelRequest
from .search.base import SearchEngine, SearchError, SearchHit

Reply = str | list[str | Exception] | Exception  # an exception in a list is raised at that point
Handler = Callable[[ModelRequest], Reply | Awaitable[Reply]]


def kind_of(request: ModelRequest) -> Literal["plan", "queries", "answer", "write"]:
    """Which step of the pipeline made this request (for scripts that answer each step differently)."""
    if request.schema is PlanAction:
        return "plan"
    if request.schema is not None and request.schema.__name__ == "QueryList":
        return "queries"
    text = request.text
    if "Passages" in text or "段落" in text:
        return "answer"
    return "write"


def kind_of_body(body: dict[str, Any]) -> Literal["plan", "queries", "answer", "write"]:
    """``kind_of`` for a request body that reached a FakeOpenAIServer."""
    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    fmt = body.get("response_format") or {}
    # json_schema names the schema; json_object (and llama.cpp's json_schema) carry it, with its title
    schema = fmt.get("schema") or body.get("json_schema") or {}
    name = (fmt.get("json_schema") or {}).get("name") or schema.get("title", "")
    if name == "PlanAction" or (not fmt and ('"finish"' in text and "planner" in text)):
        return "plan"
    if name == "QueryList" or '"queries"' in text:
        return "queries"
    if "Passages" in text or "段落" in text:
        return "answer"
    return "write"


@dataclass
class Call:
    request: ModelRequest
    started: float
    ended: float = 0.0


class ScriptedModel(ChatModel):
    """Replies with whatever ``handler(request)`` returns: a string, a list of pieces, or an exception."""

    def __init__(
        self,
        handler: Handler,
        *,
        delay: float = 0.0,
        piece_delay: float = 0.0,
        style: Literal["chat", "base"] = "chat",
        name: str = "scripted",
    ) -> None:
        self.handler = handler
        self.delay = delay
        self.piece_delay = piece_delay
        self.style = style
        self.name = name
        self.calls: list[Call] = []
        self.active = 0
        self.max_active = 0

    async def _stream(self, request: ModelRequest) -> AsyncIterator[str]:
        call = Call(request, time.monotonic())
        self.calls.append(call)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            reply = self.handler(request)
            if inspect.isawaitable(reply):
                reply = await reply
            if self.delay:
                await asyncio.sleep(self.delay)
            if isinstance(reply, Exception):
                raise reply
            pieces = [reply] if isinstance(reply, str) else reply
            for piece in pieces:
                if self.piece_delay:
                    await asyncio.sleep(self.piece_delay)
                if isinstance(piece, BaseException):
                    raise piece  # a stream that fails after some text
                yield piece
        finally:
            self.active -= 1
            call.ended = time.monotonic()

    def requests(self, kind: str | None = None) -> list[ModelRequest]:
        return [c.request for c in self.calls if kind is None or kind_of(c.request) == kind]


def plan_json(*nodes: tuple[str, str, list[str]], finish: bool = True) -> str:
    """A planner reply adding ``(id, question, depends_on)`` nodes."""
    return json.dumps(
        {"add": [{"id": i, "question": q, "depends_on": d} for i, q, d in nodes], "finish": finish}
    )


class MemoryEngine(SearchEngine):
    """Hits from a function of the query (or a fixed list); can raise or sleep on purpose."""

    def __init__(
        self,
        hits: Callable[[str], list[SearchHit]] | list[SearchHit],
        *,
        name: str = "memory",
        is_web: bool = False,
        error: Exception | None = None,
        delay: float = 0.0,
    ) -> None:
        self._hits = hits
        self.name = name
        self.is_web = is_web
        self.error = error
        self.delay = delay
        self.queries: list[str] = []

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        self.queries.append(query)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        hits = self._hits(query) if callable(self._hits) else self._hits
        return hits[:limit]


def doc_hit(title: str, text: str, url: str | None = None, engine: str = "memory") -> SearchHit:
    """A hit that carries its text, as the local index returns it."""
    return SearchHit(url or f"doc://{title.replace(' ', '_')}", title, text[:200], engine, text)


class _Server:
    """A real aiohttp server on 127.0.0.1 on a free port; use ``async with``."""

    def __init__(self) -> None:
        self.app = web.Application(client_max_size=10 * 2**20)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Any:
        # handlers are cancelled when their client leaves, as a model server aborts a dropped request
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class RecordedRequest:
    body: dict[str, Any]
    headers: dict[str, str]
    started: float
    ended: float = 0.0
    path: str = "/v1/chat/completions"
    admitted: float = 0.0  # when it got a generation slot (``slots``); its start without slots

    @property
    def prompt(self) -> str:
        if "prompt" in self.body and "messages" not in self.body:  # /v1/completions
            return str(self.body["prompt"])
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))


CUT = "\x00cut\x00"  # put in a reply's pieces to drop the connection at that point
END = "\x00end\x00"  # put in a reply's pieces to end the stream there, without [DONE]


@dataclass(frozen=True)
class HttpError:
    """An HTTP error reply: OpenAI's ``{"error": {...}}`` body, or ``body`` exactly when given.

    ``body`` may be a dict or list (sent as JSON, e.g. FastAPI's ``{"detail": [...]}``) or a str
    (sent as plain text, e.g. a proxy's HTML page).
    """

    status: int
    message: str = ""
    type: str | None = None  # by default BadRequestError for 4xx, InternalServerError for 5xx (as vLLM)
    code: str | int | None = None  # by default the status (as vLLM); OpenAI's are words
    param: str | None = None
    body: Any = None


@dataclass(frozen=True)
class Chunk:
    """One stream event scripted in full, for what a plain text piece cannot show.

    ``delta`` is the choice's delta (chat) or is merged into the choice (completions);
    ``finish_reason`` and ``usage`` are set as given; ``choices`` replaces the whole choices list
    (``[]`` for vLLM's and OpenAI's usage-only last chunk); ``data`` replaces the whole payload (e.g.
    ``{"error": {...}}``, sent as JSON; a str is sent as it is); ``raw`` is the event's text verbatim
    (e.g. ``": keep-alive"``).
    """

    delta: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    choices: list[dict[str, Any]] | None = None
    data: Any = None
    raw: str | None = None


def tool_call_delta(
    arguments: str, *, index: int = 0, name: str | None = None, call_id: str | None = None
) -> dict[str, Any]:
    """A ``tool_calls`` delta carrying (part of) one function call's arguments.

    Servers send the call's ``id`` and ``name`` with its first part only; pass them for that one.
    """
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        call["id"], call["type"] = call_id, "function"
    if name is not None:
        call["function"]["name"] = name
    return {"tool_calls": [call]}


Piece = str | dict[str, Any] | Chunk
ServerReply = str | list[Piece] | int | tuple[int, str] | HttpError
ServerHandler = Callable[[dict[str, Any]], ServerReply | Awaitable[ServerReply]]


class FakeOpenAIServer(_Server):
    """An OpenAI-compatible server on 127.0.0.1 that answers from ``handler(body)``.

    The handler returns one of:

    - ``"text"``: the whole reply, in one piece;
    - a list of pieces, streamed one SSE chunk each: ``"text"`` is a content delta; a dict is a raw
      delta (``{"reasoning_content": "..."}``, ``{"reasoning": "..."}``, ``{"content": None}``,
      ``tool_call_delta('{"finish": true}', name="PlanAction", call_id="call_0")``); a ``Chunk`` is
      a chunk in full (``Chunk(finish_reason="length")``, ``Chunk(choices=[], usage={...})``,
      ``Chunk(data={"error": {"message": "..."}})``, ``Chunk(raw=": ping")``); ``CUT`` drops the
      connection there, ``END`` ends the stream there without ``[DONE]``;
    - ``429`` (an int): that HTTP status, with a generic message;
    - ``(400, "message")`` or ``HttpError(400, "message", code="context_length_exceeded")``: an
      HTTP error with that message (or ``HttpError(422, body={"detail": [...]})`` for a body exactly).

    Chat requests go to ``/v1/chat/completions``, base-model ones to ``/v1/completions`` (whose text
    pieces are ``choices[0].text``). A request without ``stream``, or any request when ``streaming``
    is false (a server that ignores ``stream``), gets one JSON reply built from the same pieces:
    content joined (``null`` when there is none but tool calls), reasoning, tool calls merged,
    ``finish_reason`` and ``usage`` from the last ``Chunk`` that sets them. ``requests`` records
    every request with the times it started and ended, so tests can see overlap and order.

    ``slots=N`` makes it a server with a fixed batch size, as vLLM's ``--max-num-seqs`` or LMDeploy's
    ``--max-batch-size``: at most N replies are generated at once, the others wait in arrival order.
    A streamed request gets its response headers at once (as those servers send them) and its first
    token ``first_delay`` after it gets a slot; it holds the slot until its last piece is sent (or its
    client leaves). Error replies take no slot. ``slot_seconds`` counts the seconds slots were held
    (with or without ``slots``), ``max_active`` the most replies generated at once and ``max_waiting``
    the longest queue; ``reset_stats()`` clears them. ``slot_seconds / (slots * wall)`` is how full the
    model was kept over a wall time.
    """

    def __init__(
        self,
        handler: ServerHandler,
        *,
        piece_delay: float = 0.0,
        first_delay: float = 0.0,
        model: str = "fake-model",
        record: bool = True,
        streaming: bool = True,
        slots: int | None = None,
    ) -> None:
        super().__init__()
        if slots is not None and slots < 1:
            raise ValueError("slots must be at least 1")
        self.handler = handler
        self.slots = slots
        self._free = asyncio.Semaphore(slots) if slots is not None else None
        self.active = 0  # replies being generated now
        self.waiting = 0  # requests waiting for a slot now
        self.reset_stats()
        self.first_delay = first_delay  # a simulated time to first token
        self.record = record  # off for long benchmarks, where the record itself would grow
        self.piece_delay = piece_delay
        self.model = model
        self.streaming = streaming
        self.requests: list[RecordedRequest] = []
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_post("/v1/completions", self._chat)
        self.app.router.add_get("/v1/models", self._models)

    def reset_stats(self) -> None:
        """Clear ``slot_seconds``, ``max_active``, ``max_waiting`` and ``calls`` (not ``requests``)."""
        self.slot_seconds = 0.0
        self.max_active = 0
        self.max_waiting = 0
        self.calls = 0  # replies generated (error replies are not counted)

    @asynccontextmanager
    async def _slot(self, record: RecordedRequest) -> AsyncIterator[None]:
        """Hold one generation slot (waiting for one when ``slots`` are all taken)."""
        if self._free is not None:
            self.waiting += 1
            self.max_waiting = max(self.max_waiting, self.waiting)
            try:
                await self._free.acquire()
            finally:
                self.waiting -= 1
        record.admitted = time.monotonic()
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.calls += 1
        try:
            yield
        finally:
            self.active -= 1
            self.slot_seconds += time.monotonic() - record.admitted
            if self._free is not None:
                self._free.release()

    def cli_flags(self) -> list[str]:
        """The command-line flags that point mindsearch at this server."""
        return ["--llm", "openai", "--base-url", f"{self.url}/v1", "--model", self.model]

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        from .llm.openai import forget_formats

        forget_formats(self.url)  # what clients learned about this server; its port may be reused

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = RecordedRequest(body, dict(request.headers), time.monotonic(), path=request.path)
        if self.record:
            self.requests.append(record)
        try:
            reply = self.handler(body)
            if inspect.isawaitable(reply):
                reply = await reply
            if isinstance(reply, int):
                reply = HttpError(reply, f"scripted status {reply}")
            elif isinstance(reply, tuple):
                reply = HttpError(reply[0], reply[1])
            if isinstance(reply, HttpError):
                return _error_response(reply)
            pieces: list[Piece] = [reply] if isinstance(reply, str) else list(reply)
            chat = request.path.endswith("/chat/completions")
            if not body.get("stream") or not self.streaming:
                async with self._slot(record):
                    return web.json_response(self._whole(pieces, chat))
            return await self._stream(request, pieces, chat, record)
        finally:
            record.ended = time.monotonic()

    async def _stream(
        self, request: web.Request, pieces: list[Piece], chat: bool, record: RecordedRequest
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        async with self._slot(record):
            try:
                return await self._generate(request, response, pieces, chat)
            except ConnectionResetError:  # the client left mid-reply: a model server just stops
                return response

    async def _generate(
        self, request: web.Request, response: web.StreamResponse, pieces: list[Piece], chat: bool
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, piece in enumerate(pieces):
            # each piece at its own deadline, so sleep overshoots do not add up over a reply
            due = start + self.first_delay + (index + 1) * self.piece_delay
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            if piece is CUT:  # the connection drops mid-stream
                assert request.transport is not None
                request.transport.close()
                return response
            if piece is END:
                return response
            await response.write(self._event(piece, chat).encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    def _event(self, piece: Piece, chat: bool) -> str:
        chunk = piece if isinstance(piece, Chunk) else Chunk(_delta(piece, chat))
        if chunk.raw is not None:
            return chunk.raw + "\n\n"
        data = chunk.data
        if data is None:
            choices = chunk.choices
            if choices is None:
                choice: dict[str, Any] = {"index": 0, "finish_reason": chunk.finish_reason}
                if chat:
                    choice["delta"] = chunk.delta
                else:
                    choice.update({"text": "", **chunk.delta})
                choices = [choice]
            kind = "chat.completion.chunk" if chat else "text_completion"
            data = {"id": "x", "object": kind, "created": 0, "model": self.model, "choices": choices}
            if chunk.usage is not None:
                data["usage"] = chunk.usage
        return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"

    def _whole(self, pieces: list[Piece], chat: bool) -> Any:
        """The pieces as one JSON reply, as a server answers a request without ``stream``."""
        content: list[str] = []
        reasoning: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish, usage = "stop", None
        for piece in pieces:
            if piece is CUT or piece is END:
                continue
            if isinstance(piece, Chunk):
                if piece.data is not None and not isinstance(piece.data, str):
                    return piece.data  # e.g. {"error": {...}} in a 200 reply
                finish, usage = piece.finish_reason or finish, piece.usage or usage
            delta = piece.delta if isinstance(piece, Chunk) else _delta(piece, chat)
            if isinstance(delta.get("content"), str):
                content.append(delta["content"])
            if isinstance(delta.get("text"), str):
                content.append(delta["text"])
            for key in ("reasoning_content", "reasoning"):
                if isinstance(delta.get(key), str):
                    reasoning.append(delta[key])
            for position, call in enumerate(delta.get("tool_calls") or []):
                whole = calls.setdefault(
                    call.get("index", position), {"id": "", "type": "function", "function": {}}
                )
                whole["id"] = call.get("id") or whole["id"]
                function = call.get("function") or {}
                if "name" in function:
                    whole["function"]["name"] = function["name"]
                part = function.get("arguments") or ""
                part = part if isinstance(part, str) else json.dumps(part)
                whole["function"]["arguments"] = whole["function"].get("arguments", "") + part
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
            if not content and calls:
                message["content"] = None
            if reasoning:
                message["reasoning_content"] = "".join(reasoning)
            if calls:
                message["tool_calls"] = [calls[index] for index in sorted(calls)]
            choice["message"] = message
        else:
            choice["text"] = "".join(content)
        kind = "chat.completion" if chat else "text_completion"
        data = {"id": "x", "object": kind, "created": 0, "model": self.model, "choices": [choice]}
        if usage is not None:
            data["usage"] = usage
        return data


def _delta(piece: str | dict[str, Any], chat: bool) -> dict[str, Any]:
    if isinstance(piece, str):
        return {"content" if chat else "text": piece}
    return dict(piece)


def _error_response(error: HttpError) -> web.Response:
    if error.body is None:
        kind = error.type or ("BadRequestError" if error.status < 500 else "InternalServerError")
        detail = {"message": error.message, "type": kind, "param": error.param}
        body: Any = {"object": "error", **detail, "code": error.status if error.code is None else error.code}
        return web.json_response({"error": body}, status=error.status)
    if isinstance(error.body, str):
        return web.Response(text=error.body, status=error.status)
    return web.json_response(error.body, status=error.status)


PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StaticSite(_Server):
    """Serves files under ``root`` (``.gz`` files decompressed) and any extra routes given as handlers."""

    def __init__(self, root: Path | None = None, routes: dict[str, PageHandler] | None = None) -> None:
        super().__init__()
        self.root = root
        self.hits: list[str] = []
        for path, handler in (routes or {}).items():
            self.app.router.add_route("*", path, self._counted(handler))
        if root is not None:
            self.app.router.add_get("/{tail:.*}", self._counted(self._file))

    def _counted(self, handler: PageHandler) -> PageHandler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.hits.append(request.path)
            return await handler(request)

        return wrapped

    async def _file(self, request: web.Request) -> web.StreamResponse:
        assert self.root is not None
        path = (self.root / request.match_info["tail"]).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            raise web.HTTPNotFound()
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        return web.Response(body=data, content_type="text/html", charset="utf-8")


class AppServer:
    """An ASGI app served by a real uvicorn on 127.0.0.1 (a free port), in the running event loop."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(self.config)
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> AppServer:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task


def clean_env() -> dict[str, str]:
    """This process's environment without MINDSEARCH_* variables, for a child that must use defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MINDSEARCH_")}


@contextmanager
def block_real_models() -> Iterator[None]:
    """Make every real backend raise when built, so a test that forgot a fake fails loudly.

    The OpenAI-compatible backend stays usable for servers on loopback (the fakes in this module).
    """
    from . import plugins

    saved = dict(plugins.BACKENDS)

    def refuse(settings: Any) -> ChatModel:
        raise LLMError("real model calls are blocked in this test; pass model=ScriptedModel(...)")

    def loopback_only(settings: Any) -> ChatModel:
        host = urlsplit(settings.base_url).hostname or ""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise LLMError(f"tests may only call model servers on loopback, not {settings.base_url}")
        return saved["openai"](settings)

    for name in plugins.BACKENDS:
        plugins.BACKENDS[name] = loopback_only if name == "openai" else refuse
    try:
        yield
    finally:
        plugins.BACKENDS.clear()
        plugins.BACKENDS.update(saved)


@dataclass
class Recorder:
    """Collects events of a run (for tests that check the stream)."""

    events: list[Any] = field(default_factory=list)

    def of(self, type_: str) -> list[Any]:
        return [e for e in self.events if e.type == type_]


__all__ = [
    "CUT",
    "END",
    "AppServer",
    "Chunk",
    "FakeOpenAIServer",
    "HttpError",
    "MemoryEngine",
    "Recorder",
    "ScriptedModel",
    "SearchError",
    "StaticSite",
    "block_real_models",
    "clean_env",
    "doc_hit",
    "kind_of",
    "kind_of_body",
    "plan_json",
    "tool_call_delta",
]

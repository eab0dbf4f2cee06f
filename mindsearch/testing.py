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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from aiohttp import web

from .graph import PlanAction
from .llm.base import ChatModel, LLMError, ModelRequest
from .search.base import SearchEngine, SearchError, SearchHit

Reply = str | list[str] | Exception
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
    name = (fmt.get("json_schema") or {}).get("name", "")
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

    @property
    def prompt(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))


CUT = "\x00cut\x00"  # put in a reply's pieces to drop the connection at that point
ServerReply = str | list[str] | int | tuple[int, str]
ServerHandler = Callable[[dict[str, Any]], ServerReply | Awaitable[ServerReply]]


class FakeOpenAIServer(_Server):
    """An OpenAI-compatible server: ``handler(body)`` gives the reply text (or pieces), or an HTTP status.

    Streams Server-Sent Events like the real API when ``stream`` is true. ``requests`` records every
    chat request with the times it started and ended, so tests can see overlap and order.
    """

    def __init__(
        self,
        handler: ServerHandler,
        *,
        piece_delay: float = 0.0,
        first_delay: float = 0.0,
        model: str = "fake-model",
        record: bool = True,
    ) -> None:
        super().__init__()
        self.handler = handler
        self.first_delay = first_delay  # a simulated time to first token
        self.record = record  # off for long benchmarks, where the record itself would grow
        self.piece_delay = piece_delay
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_get("/v1/models", self._models)

    def cli_flags(self) -> list[str]:
        """The command-line flags that point mindsearch at this server."""
        return ["--llm", "openai", "--base-url", f"{self.url}/v1", "--model", self.model]

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = RecordedRequest(body, dict(request.headers), time.monotonic())
        if self.record:
            self.requests.append(record)
        try:
            reply = self.handler(body)
            if inspect.isawaitable(reply):
                reply = await reply
            if isinstance(reply, int):
                return web.json_response({"error": {"message": f"scripted status {reply}"}}, status=reply)
            if isinstance(reply, tuple):
                return web.json_response({"error": {"message": reply[1]}}, status=reply[0])
            pieces = [reply] if isinstance(reply, str) else reply
            if not body.get("stream"):
                return web.json_response(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "model": self.model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "".join(pieces)},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                )
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
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
                chunk = {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "model": self.model,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            return response
        finally:
            record.ended = time.monotonic()


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
    "AppServer",
    "FakeOpenAIServer",
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
]

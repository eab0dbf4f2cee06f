"""What an API replica does when ``MINDSEARCH_REDIS_URL`` is set: questions become queued runs (arq), their
events are read from Redis Streams, and ``/v1/runs/{id}`` re-attaches to, shows or cancels a run from any
replica. ``mindsearch.api`` hooks this in; without Redis none of it is loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.responses import StreamingResponse

from .. import events as ev
from .._store import Store
from .._store.redis import REDIS_DOWN, where
from ..options import RunOptions
from ..settings import Settings
from ..state import RunState
from .runs import Busy, RunLog
from .worker import JOB, queue_name, reap_forever

if TYPE_CHECKING:
    from ..api import SearchResult, Server

log = logging.getLogger("mindsearch.fleet")


class RunInfo(BaseModel):
    """``GET /v1/runs/{id}``: where a run is, and its answer once it has one."""

    id: str
    state: str = Field(description="queued, running, done, failed or cancelled.")
    question: str
    session_id: str = ""
    events: int = Field(description="Events so far; the last one's id (for Last-Event-ID).")
    ok: bool | None = Field(None, description="Whether it answered (once it has ended).")
    answer: str = ""
    references: list[ev.Reference] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


def redis_down_message(settings: Settings) -> str:
    return (
        f"the shared store (Redis at {where(settings)}, MINDSEARCH_REDIS_URL) cannot be reached; "
        "try again shortly"
    )


class Fleet:
    """One replica's link to the fleet: the run log, the arq queue, and a reaper of dead workers' runs."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.runs = RunLog(store.redis, settings)
        self._queue: Any = None  # arq's ArqRedis, made on first use (Redis may be down at start)
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._reaper = asyncio.create_task(reap_forever(self.runs, min(1.0, self.settings.run_lease / 3)))

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self._queue is not None:
            await self._queue.aclose()

    async def _enqueue(self, run_id: str) -> None:
        if self._queue is None:
            from arq.connections import RedisSettings, create_pool

            assert self.settings.redis_url is not None
            redis_settings = RedisSettings.from_dsn(self.settings.redis_url)
            redis_settings.conn_timeout = max(1, int(self.settings.redis_timeout))
            redis_settings.conn_retries = 0
            self._queue = await create_pool(redis_settings, default_queue_name=queue_name(self.settings))
        await self._queue.enqueue_job(JOB, run_id, _job_id=run_id)

    # -- starting a run ------------------------------------------------------------------------------
    async def submit(
        self,
        question: str,
        history: list[tuple[str, str]],
        options: RunOptions,
        session: str,
        owner: str,
        request_id: str,
    ) -> str:
        """Queue a run and return its id; 429 with Retry-After when the caller's key has started its
        runs for this minute, 503 with Retry-After when the fleet is at its cap."""
        run_id = uuid.uuid4().hex
        wait = await self.runs.rate(owner)
        if wait:
            raise HTTPException(
                429,
                f"this key has started {self.settings.key_runs_per_minute} runs this minute, its limit "
                "(MINDSEARCH_KEY_RUNS_PER_MINUTE); try again in a minute",
                headers={"Retry-After": str(wait)},
            )
        try:
            await self.runs.create(
                run_id,
                owner=owner,
                question=question,
                session=session,
                request_id=request_id,
                options=options.model_dump(exclude_unset=True),
                history=history,
            )
        except Busy:
            raise HTTPException(
                503,
                f"the servers are running {self.settings.max_concurrent_runs} questions, their limit "
                "(MINDSEARCH_MAX_CONCURRENT_RUNS, for all replicas together); try again shortly",
                headers={"Retry-After": str(self.settings.busy_retry_after)},
            ) from None
        try:
            await self._enqueue(run_id)
        except BaseException:
            await self.runs.finish(run_id, "the run could not be queued", state="failed", allowed=("queued",))
            raise
        return run_id

    # -- reading a run -------------------------------------------------------------------------------
    async def sse(self, run_id: str, after: int = 0) -> AsyncIterator[str]:
        """The run's events as server-sent events with ids 1, 2, 3...; a comment every idle second keeps
        proxies from closing the connection."""
        async for seq, data in self.runs.follow(run_id, after, idle=True):
            if not seq:
                yield ": waiting\n\n"
                continue
            event = ev.parse_event(data)
            yield f"id: {seq}\nevent: {event.type}\ndata: {data}\n\n"

    async def events(self, run_id: str) -> AsyncIterator[ev.Event]:
        async for _seq, data in self.runs.follow(run_id):
            yield ev.parse_event(data)

    def stream(self, run_id: str, headers: dict[str, str], after: int = 0) -> StreamingResponse:
        """The run's event stream. Hanging up does not cancel the run (DELETE does): it goes on in its
        worker, and the client may re-attach with Last-Event-ID on any replica."""
        return StreamingResponse(
            self.sse(run_id, after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
        )

    async def info(self, run_id: str, owner: str) -> RunInfo:
        record = await self.runs.owned(run_id, owner)
        if record is None:
            raise HTTPException(404, "no such run")
        state = RunState()
        events = await self.runs.all_events(run_id)
        for event in events:
            state.apply(event)
        return RunInfo(
            id=run_id,
            state=record.state,
            question=record.question,
            session_id=record.session,
            events=len(events),
            ok=state.ok if state.finished else None,
            answer=state.answer,
            references=state.references,
            errors=[f"{error.stage}: {error.message}" for error in state.errors],
        )

    async def health(self) -> dict[str, Any]:
        """Redis' reachability and the queue: runs waiting for a worker, runs holding slots."""
        started = time.monotonic()
        redis: Any = self.store.redis
        try:
            await redis.ping()
            depth = int(await redis.zcard(queue_name(self.settings)))
            counts = await self.runs.counts()
        except REDIS_DOWN as exc:
            return {
                "redis": {
                    "ok": False,
                    "detail": f"{redis_down_message(self.settings)} ({type(exc).__name__})",
                }
            }
        return {
            "redis": {
                "ok": True,
                "detail": f"{where(self.settings)}, {1000 * (time.monotonic() - started):.1f} ms",
            },
            "queue": {
                "waiting": depth,
                "active": counts["active"],
                "limit": self.settings.max_concurrent_runs,
                "workers": counts["workers"],
            },
        }


def install(app: FastAPI, server: Server) -> None:
    """The fleet's routes and its Redis-down reply, on the API app (only when MINDSEARCH_REDIS_URL is set)."""
    fleet: Fleet = server.fleet
    assert fleet is not None
    settings = server.settings
    router = APIRouter()

    for error in REDIS_DOWN:

        @app.exception_handler(error)
        async def redis_down(request: Request, exc: Exception) -> JSONResponse:
            log.warning("Redis cannot be reached: %s: %s", type(exc).__name__, exc)
            return JSONResponse(
                {"error": {"message": redis_down_message(settings), "status": 503}},
                503,
                headers={"Retry-After": str(settings.busy_retry_after)},
            )

    @router.get("/v1/runs/{run_id}", response_model=RunInfo)
    async def run_info(run_id: str, request: Request) -> RunInfo:
        """A run's state, and its answer once it has ended (the caller's runs only: others are 404)."""
        info: RunInfo = await fleet.info(run_id, await server.owner(request))
        return info

    @router.get("/v1/runs/{run_id}/events", responses={200: {"content": {"text/event-stream": {}}}})
    async def run_events(run_id: str, request: Request, after: int | None = None) -> Response:
        """Re-attach to a run's events from any replica: those after ``Last-Event-ID`` (or ``after``)."""
        if await fleet.runs.owned(run_id, await server.owner(request)) is None:
            raise HTTPException(404, "no such run")
        header = request.headers.get("last-event-id", "").strip()
        if after is None:
            after = int(header) if header.isdigit() else 0
        return fleet.stream(run_id, {"X-Run-Id": run_id}, max(0, after))

    @router.delete("/v1/runs/{run_id}")
    async def cancel_run(run_id: str, request: Request) -> JSONResponse:
        """Cancel a run: its worker stops it within a second (``done`` says ok=false)."""
        if await fleet.runs.owned(run_id, await server.owner(request)) is None:
            raise HTTPException(404, "no such run")
        was = await fleet.runs.cancel(run_id)
        return JSONResponse({"id": run_id, "was": was}, 202)

    app.include_router(router)


async def search_reply(
    server: Server, fleet: Fleet, run_id: str, headers: dict[str, str], stream: bool
) -> Response:
    """The reply of ``POST /v1/search`` for a queued run: its event stream, or the whole result."""
    from ..api import collect

    headers = {**headers, "X-Run-Id": run_id}
    if stream:
        return fleet.stream(run_id, headers)
    result: SearchResult = await collect(fleet.events(run_id))
    return JSONResponse(
        result.model_copy(update={"session_id": headers["X-Session-Id"]}).model_dump(), headers=headers
    )

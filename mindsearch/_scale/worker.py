"""``mindsearch worker``: runs the questions that API replicas queue, on arq.

Why arq rather than taskiq: arq is asyncio-native like mindsearch, small (one package, on the same
``redis`` client), and has what this needs built in: job ids chosen by the caller (the run id, so a run
is queued once), a per-worker job limit, a job timeout, graceful draining on SIGTERM
(``job_completion_wait``) and ``max_tries``. taskiq needs a broker package and a result backend on top
and its retry and timeout behaviour lives in middlewares; nothing here needs its extra generality.

arq's own retry is off (``max_tries=1``): a run's events are already streamed to clients, so running it
again from the start would repeat them. A run whose worker died is ended by the lease instead
(``RunLog.reap``): an ``error`` event and ``done(ok=false)``, within ``run_lease`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import Any

from .. import events as ev
from ..settings import Settings
from .runs import RunLog

log = logging.getLogger("mindsearch.worker")
JOB = "run"  # the arq function name every replica enqueues


def queue_name(settings: Settings) -> str:
    return f"{settings.redis_prefix}:queue"


def secrets_of(settings: Settings) -> list[str]:
    """The secrets no client may see in an event (the same list the API server redacts)."""
    found = [
        settings.api_key,
        *settings.api_keys,
        settings.llm_api_key,
        settings.brave_api_key,
        settings.serper_api_key,
        settings.tavily_api_key,
    ]
    return [secret for secret in found if secret]


async def run_job(ctx: dict[str, Any], run_id: str) -> str:
    """Run one queued question: claim it, stream its (redacted) events into its Redis Stream, store the
    finished turn in its session, and stop it within ``cancel_poll`` when it is cancelled."""
    from .._telemetry import REQUEST_ID
    from ..api import RunRedactor
    from ..options import RunOptions

    runs: RunLog = ctx["runs"]
    settings: Settings = ctx["settings"]
    record = await runs.claim(run_id, worker_id())
    if record is None:
        return "not queued"  # cancelled, reaped, or taken already
    engine = ctx["engine"]
    sessions = ctx["store"].sessions
    redactor = RunRedactor(secrets_of(settings), record.request_id)
    REQUEST_ID.set(record.request_id)
    started = time.monotonic()
    outcome = "done"

    async def produce() -> None:
        nonlocal outcome
        standalone = record.question
        options = RunOptions(**record.options)
        async for event in engine.stream(record.question, record.history, options=options):
            if isinstance(event, ev.RunStarted):
                standalone = event.question
                event = event.model_copy(update={"run_id": run_id})
            if isinstance(event, ev.Done) and record.session and event.ok:
                # before `done` is out: a follow-up sent on seeing it must find this turn
                await sessions.append(record.session, standalone, event.answer)
            public = redactor.public(event)
            to = "done" if isinstance(event, ev.Done) else ""
            if public and await runs.append(run_id, public, allowed=("running",), to=to) < 0:
                outcome = "lost"  # the run was ended elsewhere (its lease ran out): stop quietly
                return

    async def watch(task: asyncio.Task[None]) -> None:
        nonlocal outcome
        beat = settings.run_lease / 3
        last_beat = time.monotonic()
        while not task.done():
            await asyncio.sleep(settings.cancel_poll)
            if await runs.client.hget(runs.record_key(run_id), "cancel") == "1":
                outcome = "cancelled"
                task.cancel()
                return
            if time.monotonic() - last_beat >= beat:
                await runs.heartbeat(run_id)
                last_beat = time.monotonic()

    task = asyncio.create_task(produce())
    watcher = asyncio.create_task(watch(task))
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if outcome == "cancelled":
            await runs.finish(run_id, "the run was cancelled", state="cancelled", allowed=("running",))
        elif outcome == "done" and (await runs.get(run_id) or record).state == "running":
            # the stream ended without `done` (it always sends one; this is the safety net)
            await runs.finish(run_id, "the run ended without an answer", state="failed", allowed=("running",))
    except asyncio.CancelledError:  # the worker is stopping (SIGTERM after worker_drain): say so
        task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.shield(
                runs.finish(
                    run_id, "the worker running this question stopped", state="failed", allowed=("running",)
                )
            )
        raise
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        await runs.release(run_id)
        log.info("run %s: %s in %.1f s", run_id, outcome, time.monotonic() - started)
    return outcome


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def reap_forever(runs: RunLog, every: float, worker: str | None = None) -> None:
    """End runs whose lease ran out, for as long as this process runs (every replica and worker does);
    a worker also says it is alive."""
    while True:
        try:
            if worker is not None:
                await runs.present(worker)
            for run_id in await runs.reap():
                log.warning("run %s: its worker stopped; ended with an error", run_id)
        except Exception as exc:  # Redis away for a moment: try again next time
            log.warning("reaping runs failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(every)


def worker_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """arq ``Worker`` keyword arguments for ``settings``."""
    from arq import func
    from arq.connections import RedisSettings

    from .._run import MindSearch
    from .._store import open_store

    assert settings.redis_url, "mindsearch worker needs MINDSEARCH_REDIS_URL"

    shared: dict[str, Any] = {}  # kept across arq workers when one is restarted after Redis was away

    async def startup(ctx: dict[str, Any]) -> None:
        from .._telemetry.redact import remember

        remember(secrets_of(settings))  # never in a worker's log line or span either
        if not shared:
            store = open_store(settings)
            shared["settings"] = settings
            shared["store"] = store
            shared["runs"] = RunLog(store.redis, settings)
            shared["engine"] = MindSearch(settings)
            shared["reaper"] = asyncio.create_task(
                reap_forever(shared["runs"], min(1.0, settings.run_lease / 3), worker_id())
            )
        ctx.update(shared)

    async def shutdown(ctx: dict[str, Any]) -> None:
        shared.clear()
        ctx["reaper"].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ctx["reaper"]
        with contextlib.suppress(Exception):
            await ctx["runs"].absent(worker_id())
        await ctx["engine"].aclose()
        await ctx["store"].close()

    assert settings.redis_url is not None
    return {
        "functions": [
            func(run_job, name=JOB, max_tries=1, timeout=settings.total_timeout + settings.run_lease + 30)
        ],
        "queue_name": queue_name(settings),
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": settings.worker_jobs,
        "poll_delay": 0.1,
        "job_completion_wait": settings.worker_drain,
        "keep_result": 60,
        "max_tries": 1,
        **overrides,
    }


def run_worker(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT (what ``mindsearch worker`` does). arq's worker stops when Redis
    cannot be reached; this one waits for Redis to come back and starts again, so a Redis restart does not
    need every worker restarted by hand."""
    from arq.worker import Worker

    from .._store.redis import REDIS_DOWN

    options = worker_settings(settings)
    while True:
        try:
            Worker(**options).run()
            return  # stopped by a signal
        except REDIS_DOWN as exc:
            log.warning("Redis cannot be reached (%s); trying again in 1 s", type(exc).__name__)
            time.sleep(1)

"""Runs the async engine for synchronous callers on one event loop of its own.

The engine keeps aiohttp sessions and a loaded model that belong to one loop; a fresh loop per call
would break them, and a caller may already be inside a loop. So a daemon thread owns the loop.

A caller that never calls ``close`` (the README's lagent snippet does not) still gets the sessions
closed: when the ``SyncEngine`` is garbage-collected, or at the latest when the interpreter exits, so
no "Unclosed client session" is printed at exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from .._run import Answer, MindSearch
from ..events import Error, Reference

T = TypeVar("T")
CANCEL_WAIT = 30.0  # seconds a timed-out call waits for its tasks to stop
CLOSE_WAIT = 30.0  # seconds closing waits for the engine's sessions and model
log = logging.getLogger(__name__)


def _shut_down(engine: MindSearch, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Close the engine on its loop, then stop the loop and its thread (idempotent)."""
    if loop.is_closed() or not loop.is_running():
        return
    if threading.current_thread() is thread:  # collected on the loop's own thread: cannot wait here
        task = loop.create_task(engine.aclose())
        task.add_done_callback(lambda _task: loop.stop())
        return
    try:
        asyncio.run_coroutine_threadsafe(engine.aclose(), loop).result(CLOSE_WAIT)
    except Exception as exc:  # closing is best effort; a failure must not raise at exit
        log.info("closing the engine failed: %s: %s", type(exc).__name__, exc)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    if not thread.is_alive():
        loop.close()


class SyncEngine:
    def __init__(self, engine: MindSearch) -> None:
        self.engine = engine
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mindsearch-loop", daemon=True)
        self._thread.start()
        # runs on close(), when this object is collected, or at exit, whichever comes first, once
        self._finalizer = weakref.finalize(self, _shut_down, engine, self._loop, self._thread)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """The coroutine's result; after ``timeout`` seconds it is cancelled, and its run and every task
        in it have stopped, before ``TimeoutError`` is raised: nothing goes on for a caller who left."""
        started: asyncio.Future[asyncio.Task[T]] = self._loop.create_future()

        async def runner() -> T:
            task = asyncio.ensure_future(coroutine)
            started.set_result(task)
            return await task

        future = asyncio.run_coroutine_threadsafe(runner(), self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:

            async def stop() -> None:
                task = await started
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await asyncio.sleep(0)  # the done callbacks of what was cancelled

            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(CANCEL_WAIT)
            raise TimeoutError(f"no answer within {timeout:g} s; the search was stopped") from None

    def ask(self, question: str) -> Answer:
        return self.run(self.engine.ask(question), timeout=self.engine.settings.total_timeout + 60)

    def close(self) -> None:
        self._finalizer()


def answer_text(answer: Answer) -> str:
    """The answer with its reference list, as a tool returns it to an agent."""
    if not answer.text:
        problems = [e.message for e in answer.events if isinstance(e, Error)]
        return "No answer: " + ("; ".join(problems[:3]) or "nothing was found")
    return str(answer)


def references_json(references: list[Reference]) -> list[dict[str, Any]]:
    return [ref.model_dump() for ref in references]

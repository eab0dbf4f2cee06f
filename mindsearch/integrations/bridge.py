"""Runs the async engine for synchronous callers on one event loop of its own.

The engine keeps aiohttp sessions and a loaded model that belong to one loop; a fresh loop per call
would break them, and a caller may already be inside a loop. So a daemon thread owns the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..events import Error, Reference
from ..run import Answer, MindSearch

T = TypeVar("T")


class SyncEngine:
    def __init__(self, engine: MindSearch) -> None:
        self.engine = engine
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mindsearch-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def ask(self, question: str) -> Answer:
        return self.run(self.engine.ask(question), timeout=self.engine.settings.total_timeout + 60)

    def close(self) -> None:
        if self._loop.is_running():
            self.run(self.engine.aclose(), timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)


def answer_text(answer: Answer) -> str:
    """The answer with its reference list, as a tool returns it to an agent."""
    if not answer.text:
        problems = [e.message for e in answer.events if isinstance(e, Error)]
        return "No answer: " + ("; ".join(problems[:3]) or "nothing was found")
    return str(answer)


def references_json(references: list[Reference]) -> list[dict[str, Any]]:
    return [ref.model_dump() for ref in references]

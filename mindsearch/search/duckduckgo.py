"""DuckDuckGo and friends through the maintained ``ddgs`` package (the successor of duckduckgo-search).

``ddgs`` is synchronous, so each query runs in a worker thread with a timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .base import SearchEngine, SearchError, SearchHit


class DuckDuckGoEngine(SearchEngine):
    name = "duckduckgo"

    def __init__(self, *, timeout: float, backend: str = "auto") -> None:
        self.timeout = timeout
        self.backend = backend

    def _search_sync(self, query: str, limit: int) -> list[dict[str, Any]]:
        from ddgs import DDGS

        results: list[dict[str, Any]] = DDGS(timeout=int(self.timeout)).text(
            query, max_results=limit, backend=self.backend
        )
        return results

    async def check(self) -> tuple[bool, str]:
        try:
            await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo("duckduckgo.com", 443), 5)
        except (OSError, asyncio.TimeoutError) as exc:
            return False, f"duckduckgo.com cannot be resolved: {exc or 'timeout'}"
        return True, "duckduckgo.com resolves"

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        try:
            rows = await asyncio.wait_for(
                asyncio.to_thread(self._search_sync, query, limit), self.timeout + 1
            )
        except asyncio.TimeoutError as exc:
            raise SearchError(f"duckduckgo: no answer within {self.timeout:g} s") from exc
        except Exception as exc:  # ddgs raises its own exceptions and network errors of several kinds
            raise SearchError(f"duckduckgo: {type(exc).__name__}: {exc}") from exc
        return [
            SearchHit(r["href"], r.get("title") or r["href"], r.get("body") or "", self.name)
            for r in rows[:limit]
            if r.get("href")
        ]

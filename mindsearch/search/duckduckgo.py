"""DuckDuckGo through the maintained ``ddgs`` package (the successor of duckduckgo-search).

``ddgs`` is a metasearch library: its default backend ("auto") asks Wikipedia, Grokipedia, Brave,
Bing-through-DuckDuckGo, Mojeek, Startpage and Yahoo. This engine is named duckduckgo, so it asks
DuckDuckGo's HTML endpoint only (``backend="duckduckgo"``); ``backend`` takes another ddgs backend list
for whoever wants the mix. ``ddgs`` is synchronous, so each query runs in a worker thread with a timeout.
A failure is one short reason ("duckduckgo: no network"); the raw error is logged (``-v``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .base import SearchEngine, SearchError, SearchHit
from .failures import log, raw, reason

BACKEND = "duckduckgo"  # DuckDuckGo's own results, nothing else


class DuckDuckGoEngine(SearchEngine):
    name = "duckduckgo"

    def __init__(self, *, timeout: float, backend: str = BACKEND) -> None:
        self.timeout = timeout
        self.backend = backend

    def _search_sync(self, query: str, limit: int) -> list[dict[str, Any]]:
        from ddgs import DDGS

        results: list[dict[str, Any]] = DDGS(timeout=max(1, round(self.timeout))).text(
            query, max_results=limit, backend=self.backend
        )
        return results

    async def check(self) -> tuple[bool, str]:
        try:
            await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo("duckduckgo.com", 443), 5)
        except (OSError, asyncio.TimeoutError) as exc:
            return False, f"duckduckgo.com cannot be resolved: {reason(exc)}"
        return True, "duckduckgo.com resolves"

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        try:
            rows = await asyncio.wait_for(
                asyncio.to_thread(self._search_sync, query, limit), self.timeout + 1
            )
        except asyncio.TimeoutError as exc:
            raise SearchError(f"{self.name}: no answer within {self.timeout:g} s") from exc
        except Exception as exc:  # ddgs raises its own exceptions and network errors of several kinds
            log.info("%s failed for %r: %s", self.name, query, raw(exc))
            if "no results found" in str(exc).lower() and reason(exc).startswith("failed"):
                # ddgs says this both for a query with no results and for a refused one (a non-200 page)
                raise SearchError(f"{self.name}: no results (or the query was refused)") from exc
            raise SearchError(f"{self.name}: {reason(exc)}") from exc
        return [
            SearchHit(r["href"], r.get("title") or r["href"], r.get("body") or "", self.name)
            for r in rows[:limit]
            if r.get("href")
        ]

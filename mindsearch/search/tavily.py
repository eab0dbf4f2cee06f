"""Tavily search API (key: MINDSEARCH_TAVILY_API_KEY).

A time range is Tavily's ``time_range`` (``day``, ``week``, ``month``, ``year``). Tavily takes no search
language (its ``country`` only boosts one country's pages), so a chosen one is reported, not sent.
"""

from __future__ import annotations

from typing import Any

from .base import TIME_RANGES, SearchHit
from .http import HttpEngine


class TavilyEngine(HttpEngine):
    name = "tavily"
    time_ranges = frozenset(TIME_RANGES)

    def __init__(self, api_key: str, *, url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.api_key, self.url = api_key, url

    async def search(self, query: str, *, limit: int, time_range: str | None = None) -> list[SearchHit]:
        body: dict[str, Any] = {"query": query, "max_results": limit, "api_key": self.api_key}
        if time_range in TIME_RANGES:
            body["time_range"] = time_range
        data = await self.request_json(
            "POST",
            self.url,
            json=body,
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        results = data.get("results", []) if isinstance(data, dict) else []
        return [
            SearchHit(r["url"], r.get("title") or r["url"], r.get("content") or "", self.name)
            for r in results[:limit]
            if r.get("url")
        ]

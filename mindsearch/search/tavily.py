"""Tavily search API (key: MINDSEARCH_TAVILY_API_KEY)."""

from __future__ import annotations

from .base import SearchHit
from .http import HttpEngine


class TavilyEngine(HttpEngine):
    name = "tavily"

    def __init__(self, api_key: str, *, url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.api_key, self.url = api_key, url

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        data = await self.request_json(
            "POST",
            self.url,
            json={"query": query, "max_results": limit, "api_key": self.api_key},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        results = data.get("results", []) if isinstance(data, dict) else []
        return [
            SearchHit(r["url"], r.get("title") or r["url"], r.get("content") or "", self.name)
            for r in results[:limit]
            if r.get("url")
        ]

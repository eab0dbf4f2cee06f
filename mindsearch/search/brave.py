"""Brave Search API (key: MINDSEARCH_BRAVE_API_KEY)."""

from __future__ import annotations

from .base import SearchHit
from .http import HttpEngine


class BraveEngine(HttpEngine):
    name = "brave"

    def __init__(self, api_key: str, *, url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.api_key, self.url = api_key, url

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        data = await self.request_json(
            "GET",
            self.url,
            params={"q": query, "count": str(min(limit, 20))},
            headers={"X-Subscription-Token": self.api_key, "Accept": "application/json"},
        )
        results = (data.get("web") or {}).get("results", []) if isinstance(data, dict) else []
        return [
            SearchHit(r["url"], r.get("title") or r["url"], r.get("description") or "", self.name)
            for r in results[:limit]
            if r.get("url")
        ]

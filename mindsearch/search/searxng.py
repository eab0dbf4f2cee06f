"""SearXNG: a self-hosted metasearch instance, asked through its JSON API.

The instance must have ``format=json`` enabled in its settings.
"""

from __future__ import annotations

from .base import SearchError, SearchHit
from .http import HttpEngine


class SearxngEngine(HttpEngine):
    name = "searxng"

    def __init__(self, url: str, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.url = url.rstrip("/") + ("" if url.rstrip("/").endswith("/search") else "/search")

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        data = await self.request_json("GET", self.url, params={"q": query, "format": "json"})
        if not isinstance(data, dict) or "results" not in data:
            raise SearchError("searxng: the reply has no results (is format=json enabled on the instance?)")
        return [
            SearchHit(r["url"], r.get("title") or r["url"], r.get("content") or "", self.name)
            for r in data["results"][:limit]
            if r.get("url")
        ]

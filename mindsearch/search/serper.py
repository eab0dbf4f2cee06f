"""Serper, Google results through an API (key: MINDSEARCH_SERPER_API_KEY)."""

from __future__ import annotations

from .base import SearchHit
from .http import HttpEngine


class SerperEngine(HttpEngine):
    name = "serper"

    def __init__(self, api_key: str, *, url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.api_key, self.url = api_key, url

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        data = await self.request_json(
            "POST", self.url, json={"q": query, "num": limit}, headers={"X-API-KEY": self.api_key}
        )
        results = data.get("organic", []) if isinstance(data, dict) else []
        return [
            SearchHit(r["link"], r.get("title") or r["link"], r.get("snippet") or "", self.name)
            for r in results[:limit]
            if r.get("link")
        ]

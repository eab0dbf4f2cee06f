"""SearXNG: a self-hosted metasearch instance, asked through its JSON API.

The instance must have ``format=json`` enabled in its settings. A time range is SearXNG's ``time_range``
(``day``, ``week``, ``month``, ``year``; the instance passes it to those of its engines that support one), a
search language its ``language`` (``en``, ``zh-CN``, ``zh-TW``: a language and an optional region, so a
script becomes the region it is written in).
"""

from __future__ import annotations

from .base import TIME_RANGES, SearchError, SearchHit, language_parts
from .http import HttpEngine

SCRIPT_REGIONS = {"zh-Hans": "CN", "zh-Hant": "TW"}


def searxng_language(language: str) -> str:
    """SearXNG's form of a language code: ``language`` or ``language-REGION``."""
    base, script, region = language_parts(language)
    region = region or SCRIPT_REGIONS.get(f"{base}-{script}")
    return f"{base}-{region}" if region and len(region) == 2 else base


class SearxngEngine(HttpEngine):
    name = "searxng"
    time_ranges = frozenset(TIME_RANGES)
    takes_language = True

    def __init__(self, url: str, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.url = url.rstrip("/") + ("" if url.rstrip("/").endswith("/search") else "/search")

    async def search(
        self, query: str, *, limit: int, time_range: str | None = None, language: str | None = None
    ) -> list[SearchHit]:
        params = {"q": query, "format": "json"}
        if time_range in TIME_RANGES:
            params["time_range"] = str(time_range)
        if language:
            params["language"] = searxng_language(language)
        data = await self.request_json("GET", self.url, params=params)
        if not isinstance(data, dict) or "results" not in data:
            raise SearchError("searxng: the reply has no results (is format=json enabled on the instance?)")
        return [
            SearchHit(r["url"], r.get("title") or r["url"], r.get("content") or "", self.name)
            for r in data["results"][:limit]
            if r.get("url")
        ]

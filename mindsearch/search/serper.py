"""Serper, Google results through an API (key: MINDSEARCH_SERPER_API_KEY).

A time range is Google's ``tbs`` (``qdr:d``, ``qdr:w``, ``qdr:m``, ``qdr:y``); a search language Google's
``hl`` (``en``, ``zh-cn``, ``zh-tw``) and, when the code names a region, ``gl`` (the country: ``pt-BR``
is ``hl=pt-br``, ``gl=br``).
"""

from __future__ import annotations

from typing import Any

from .base import SearchHit, language_parts
from .http import HttpEngine

TBS = {"day": "qdr:d", "week": "qdr:w", "month": "qdr:m", "year": "qdr:y"}
GOOGLE_CODES = {"he": "iw", "nb": "no", "jv": "jw"}  # Google's older codes for these


def google_language(language: str) -> tuple[str, str | None]:
    """Google's ``hl`` and ``gl`` for a language code."""
    base, script, region = language_parts(language)
    if base == "zh":
        hant = script == "Hant" or (script is None and region in ("TW", "HK", "MO"))
        hl = "zh-tw" if hant else "zh-cn"
    elif base == "pt" and region in ("BR", "PT"):
        hl = f"pt-{region.lower()}"
    else:
        hl = GOOGLE_CODES.get(base, base)
    return hl, region.lower() if region and len(region) == 2 else None


class SerperEngine(HttpEngine):
    name = "serper"
    time_ranges = frozenset(TBS)
    takes_language = True

    def __init__(self, api_key: str, *, url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.api_key, self.url = api_key, url

    async def search(
        self, query: str, *, limit: int, time_range: str | None = None, language: str | None = None
    ) -> list[SearchHit]:
        body: dict[str, Any] = {"q": query, "num": limit}
        if time_range in TBS:
            body["tbs"] = TBS[time_range]
        if language:
            body["hl"], country = google_language(language)
            if country:
                body["gl"] = country
        data = await self.request_json("POST", self.url, json=body, headers={"X-API-KEY": self.api_key})
        results = data.get("organic", []) if isinstance(data, dict) else []
        return [
            SearchHit(r["link"], r.get("title") or r["link"], r.get("snippet") or "", self.name)
            for r in results[:limit]
            if r.get("link")
        ]

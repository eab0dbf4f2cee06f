"""Brave Search API (key: MINDSEARCH_BRAVE_API_KEY).

A time range is Brave's ``freshness`` (``pd``, ``pw``, ``pm``, ``py``); a search language its
``search_lang``, from Brave's own list of codes (Japanese is ``jp``, Chinese ``zh-hans`` or ``zh-hant``),
and the code's region, when Brave has that country, its ``country``.
"""

from __future__ import annotations

from .base import SearchHit, language_parts
from .http import HttpEngine

FRESHNESS = {"day": "pd", "week": "pw", "month": "pm", "year": "py"}
SEARCH_LANGS = frozenset(
    "ar eu bn bg ca zh-hans zh-hant hr cs da nl en en-gb et fi fr gl de gu he hi hu is it jp kn ko lv lt ms "
    "ml mr nb pl pt-br pt-pt pa ro ru sr sk sl es sv ta te th tr uk vi".split()
)
COUNTRIES = frozenset(
    "AR AU AT BE BR CA CL DK FI FR DE HK IN ID IT JP KR MY MX NZ NO CN PL PT PH RU SA ZA ES SE CH TW TR GB "
    "US NL".split()
)


def search_lang(language: str) -> str | None:
    """Brave's ``search_lang`` for a language code, or None when Brave has none for it."""
    base, script, region = language_parts(language)
    if base == "zh":
        hant = script == "Hant" or (script is None and region in ("TW", "HK", "MO"))
        return "zh-hant" if hant else "zh-hans"
    if base == "pt":
        return "pt-br" if region == "BR" else "pt-pt"
    if base == "en" and region in ("GB", "UK"):
        return "en-gb"
    code = {"ja": "jp", "no": "nb"}.get(base, base)
    return code if code in SEARCH_LANGS else None


class BraveEngine(HttpEngine):
    name = "brave"
    time_ranges = frozenset(FRESHNESS)
    takes_language = True

    def __init__(self, api_key: str, *, url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.api_key, self.url = api_key, url

    def supports_language(self, language: str) -> bool:
        return search_lang(language) is not None

    async def search(
        self, query: str, *, limit: int, time_range: str | None = None, language: str | None = None
    ) -> list[SearchHit]:
        params = {"q": query, "count": str(min(limit, 20))}
        if time_range in FRESHNESS:
            params["freshness"] = FRESHNESS[time_range]
        lang = search_lang(language) if language else None
        if language and lang:
            params["search_lang"] = lang
            country = language_parts(language)[2]
            if country in COUNTRIES:
                params["country"] = country
        data = await self.request_json(
            "GET",
            self.url,
            params=params,
            headers={"X-Subscription-Token": self.api_key, "Accept": "application/json"},
        )
        results = (data.get("web") or {}).get("results", []) if isinstance(data, dict) else []
        return [
            SearchHit(r["url"], r.get("title") or r["url"], r.get("description") or "", self.name)
            for r in results[:limit]
            if r.get("url")
        ]

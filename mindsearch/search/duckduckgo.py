"""DuckDuckGo through the maintained ``ddgs`` package (the successor of duckduckgo-search).

``ddgs`` is a metasearch library: its default backend ("auto") asks Wikipedia, Grokipedia, Brave,
Bing-through-DuckDuckGo, Mojeek, Startpage and Yahoo. This engine is named duckduckgo, so it asks
DuckDuckGo's HTML endpoint only (``backend="duckduckgo"``); ``backend`` takes another ddgs backend list
for whoever wants the mix. ``ddgs`` is synchronous, so each query runs in a worker thread with a timeout.
A failure is one short reason ("duckduckgo: no network"); the raw error is logged (``-v``).

A time range is ddgs's ``timelimit`` (``d``, ``w``, ``m``, ``y``); a search language is DuckDuckGo's
``region`` (country-language, ``us-en``, ``cn-zh``, ``tw-tzh``), the language's usual region unless the
code names one (``en-GB`` is ``uk-en``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .base import TIME_RANGES, SearchEngine, SearchError, SearchHit, language_parts
from .failures import log, raw, reason

BACKEND = "duckduckgo"  # DuckDuckGo's own results, nothing else


def _pairs(text: str) -> dict[str, str]:
    return {key: value for key, _, value in (pair.partition("=") for pair in text.split())}


# DuckDuckGo's regions (country-language): each language's usual one, and the pairs it has
REGIONS = _pairs(
    "ar=xa-ar bg=bg-bg ca=ct-ca cs=cz-cs da=dk-da de=de-de el=gr-el en=us-en es=es-es et=ee-et "
    "fi=fi-fi fr=fr-fr he=il-he hr=hr-hr hu=hu-hu id=id-id it=it-it ja=jp-jp ko=kr-kr lt=lt-lt "
    "lv=lv-lv ms=my-ms nb=no-no nl=nl-nl no=no-no pl=pl-pl pt=pt-pt ro=ro-ro ru=ru-ru sk=sk-sk "
    "sl=sl-sl sv=se-sv th=th-th tl=ph-tl tr=tr-tr uk=ua-uk vi=vn-vi zh=cn-zh"
)
REGIONS_BY_COUNTRY = _pairs(
    "en-AU=au-en en-CA=ca-en en-GB=uk-en en-UK=uk-en en-IE=ie-en en-IN=in-en en-ID=id-en en-MY=my-en "
    "en-NZ=nz-en en-PH=ph-en en-SG=sg-en en-ZA=za-en es-AR=ar-es es-CL=cl-es es-CO=co-es es-MX=mx-es "
    "es-PE=pe-es es-US=ue-es es-VE=ve-es fr-BE=be-fr fr-CA=ca-fr fr-CH=ch-fr de-AT=at-de de-CH=ch-de "
    "it-CH=ch-it nl-BE=be-nl pt-BR=br-pt zh-HK=hk-tzh zh-MO=hk-tzh zh-TW=tw-tzh zh-Hant=tw-tzh"
)


def region_for(language: str) -> str | None:
    """DuckDuckGo's region for a language code, or None when it has none for that language."""
    base, script, country = language_parts(language)
    for key in (f"{base}-{country}", f"{base}-{script}"):
        if key in REGIONS_BY_COUNTRY:
            return REGIONS_BY_COUNTRY[key]
    return REGIONS.get(base)


class DuckDuckGoEngine(SearchEngine):
    name = "duckduckgo"
    time_ranges = frozenset(TIME_RANGES)
    takes_language = True

    def __init__(self, *, timeout: float, backend: str = BACKEND) -> None:
        self.timeout = timeout
        self.backend = backend

    def supports_language(self, language: str) -> bool:
        return region_for(language) is not None

    def _search_sync(self, query: str, limit: int, **scope: str) -> list[dict[str, Any]]:
        from ddgs import DDGS

        results: list[dict[str, Any]] = DDGS(timeout=max(1, round(self.timeout))).text(
            query, max_results=limit, backend=self.backend, **scope
        )
        return results

    async def check(self) -> tuple[bool, str]:
        try:
            await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo("duckduckgo.com", 443), 5)
        except (OSError, asyncio.TimeoutError) as exc:
            return False, f"duckduckgo.com cannot be resolved: {reason(exc)}"
        return True, "duckduckgo.com resolves"

    async def search(
        self, query: str, *, limit: int, time_range: str | None = None, language: str | None = None
    ) -> list[SearchHit]:
        scope: dict[str, str] = {}
        if time_range in TIME_RANGES:
            scope["timelimit"] = time_range[0]  # d, w, m, y
        region = region_for(language) if language else None
        if region:
            scope["region"] = region
        try:
            rows = await asyncio.wait_for(
                asyncio.to_thread(self._search_sync, query, limit, **scope), self.timeout + 1
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

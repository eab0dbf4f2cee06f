"""The web search engines against real HTTP servers on 127.0.0.1 that answer like the real APIs."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from aiohttp import web

from mindsearch.search.base import SearchError, normalise_url
from mindsearch.search.brave import BraveEngine
from mindsearch.search.duckduckgo import DuckDuckGoEngine
from mindsearch.search.searxng import SearxngEngine
from mindsearch.search.serper import SerperEngine
from mindsearch.search.tavily import TavilyEngine
from mindsearch.testing import StaticSite

seen: list[dict[str, Any]] = []


async def searxng(request: web.Request) -> web.Response:
    seen.append({"query": dict(request.query)})
    if request.query.get("format") != "json":
        return web.Response(status=403)
    return web.json_response(
        {
            "results": [
                {"url": "https://a.example/1", "title": "A", "content": "alpha"},
                {"url": "https://b.example/2", "title": "B", "content": "beta"},
            ]
        }
    )


async def brave(request: web.Request) -> web.Response:
    seen.append({"token": request.headers.get("X-Subscription-Token"), "q": request.query.get("q")})
    if request.headers.get("X-Subscription-Token") != "brave-key":
        return web.Response(status=401)
    return web.json_response(
        {"web": {"results": [{"url": "https://c.example", "title": "C", "description": "d"}]}}
    )


async def serper(request: web.Request) -> web.Response:
    body = await request.json()
    seen.append({"key": request.headers.get("X-API-KEY"), **body})
    return web.json_response({"organic": [{"link": "https://e.example", "title": "E", "snippet": "s"}]})


async def tavily(request: web.Request) -> web.Response:
    body = await request.json()
    seen.append(body)
    return web.json_response({"results": [{"url": "https://f.example", "title": "F", "content": "c"}]})


async def limited(request: web.Request) -> web.Response:
    return web.Response(status=429)


async def test_each_engine_speaks_its_api() -> None:
    routes = {"/search": searxng, "/brave": brave, "/tavily": tavily, "/serper": serper}
    async with StaticSite(routes=routes) as site:
        engines = [
            SearxngEngine(site.url, timeout=5),
            BraveEngine("brave-key", url=f"{site.url}/brave", timeout=5),
            SerperEngine("serper-key", url=f"{site.url}/serper", timeout=5),
            TavilyEngine("tavily-key", url=f"{site.url}/tavily", timeout=5),
        ]
        results = {e.name: await e.search("who wrote dune", limit=5) for e in engines}
        for engine in engines:
            await engine.aclose()
    assert [h.url for h in results["searxng"]] == ["https://a.example/1", "https://b.example/2"]
    assert results["brave"][0].title == "C" and results["serper"][0].url == "https://e.example"
    assert results["tavily"][0].snippet == "c"
    assert {"key": "serper-key", "q": "who wrote dune", "num": 5} in seen
    assert any(s.get("api_key") == "tavily-key" for s in seen)


async def test_engine_errors_are_clear() -> None:
    async with StaticSite(routes={"/brave": brave, "/limited": limited}) as site:
        bad_key = BraveEngine("wrong", url=f"{site.url}/brave", timeout=5)
        with pytest.raises(SearchError, match="key was refused"):
            await bad_key.search("q", limit=3)
        rate = SerperEngine("k", url=f"{site.url}/limited", timeout=5)
        with pytest.raises(SearchError, match="rate limited"):
            await rate.search("q", limit=3)
        await bad_key.aclose()
        await rate.aclose()
    down = SearxngEngine("http://127.0.0.1:9", timeout=2)
    with pytest.raises(SearchError, match="searxng"):
        await down.search("q", limit=3)
    await down.aclose()


async def test_duckduckgo_uses_ddgs_and_wraps_its_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, str]] = []

    class FakeDDGS:
        def __init__(self, timeout: int) -> None:
            pass

        def text(self, query: str, max_results: int, backend: str) -> list[dict[str, str]]:
            calls.append((query, max_results, backend))
            if query == "fail":
                raise RuntimeError("network unreachable")
            return [{"href": "https://g.example", "title": "G", "body": "body"}]

    monkeypatch.setitem(sys.modules, "ddgs", types.SimpleNamespace(DDGS=FakeDDGS))
    engine = DuckDuckGoEngine(timeout=2)
    hits = await engine.search("dune author", limit=4)
    # DuckDuckGo's own backend only, not ddgs's "auto" mix of Yahoo, Brave, Mojeek, Startpage...
    assert hits[0].url == "https://g.example" and calls == [("dune author", 4, "duckduckgo")]
    with pytest.raises(SearchError, match=r"^duckduckgo: no network$"):
        await engine.search("fail", limit=4)


def test_urls_are_normalised_for_deduplication() -> None:
    assert normalise_url("HTTPS://WWW.Example.com/a/#frag") == normalise_url("https://example.com/a")
    assert normalise_url("https://example.com/a?x=1") != normalise_url("https://example.com/a?x=2")

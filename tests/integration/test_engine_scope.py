"""Time range and search language, as each web engine's API takes them, asserted on what loopback servers
that answer like the real APIs receive; and in a whole run, with the engines that cannot honour them."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mindsearch import MindSearch, Settings
from mindsearch.search.base import SearchEngine
from mindsearch.search.brave import BraveEngine
from mindsearch.search.duckduckgo import DuckDuckGoEngine
from mindsearch.search.searxng import SearxngEngine
from mindsearch.search.serper import SerperEngine
from mindsearch.search.tavily import TavilyEngine
from mindsearch.testing import MemoryEngine, ScriptedModel, StaticSite, doc_hit, kind_of

seen: dict[str, list[dict[str, Any]]] = {}


async def searxng(request: web.Request) -> web.Response:
    seen.setdefault("searxng", []).append(dict(request.query))
    return web.json_response(
        {"results": [{"url": "https://a.example/dune", "title": "Dune", "content": "x"}]}
    )


async def brave(request: web.Request) -> web.Response:
    seen.setdefault("brave", []).append(dict(request.query))
    return web.json_response({"web": {"results": [{"url": "https://b.example/dune", "title": "Dune"}]}})


async def serper(request: web.Request) -> web.Response:
    seen.setdefault("serper", []).append(await request.json())
    return web.json_response({"organic": [{"link": "https://c.example/dune", "title": "Dune"}]})


async def tavily(request: web.Request) -> web.Response:
    seen.setdefault("tavily", []).append(await request.json())
    return web.json_response({"results": [{"url": "https://d.example/dune", "title": "Dune"}]})


ROUTES = {"/search": searxng, "/brave": brave, "/serper": serper, "/tavily": tavily}


def web_engines(url: str) -> list[SearchEngine]:
    return [
        SearxngEngine(url, timeout=5),
        BraveEngine("brave-key", url=f"{url}/brave", timeout=5),
        SerperEngine("serper-key", url=f"{url}/serper", timeout=5),
        TavilyEngine("tavily-key", url=f"{url}/tavily", timeout=5),
    ]


@pytest.fixture(autouse=True)
def _fresh() -> None:
    seen.clear()


@pytest.mark.parametrize(
    ("time_range", "language", "searx", "brave_sent", "serper_sent", "tavily_sent"),
    [
        (
            "day",
            "en",
            {"time_range": "day", "language": "en"},
            {"freshness": "pd", "search_lang": "en"},
            {"tbs": "qdr:d", "hl": "en"},
            {"time_range": "day"},
        ),
        (
            "week",
            "zh-TW",
            {"time_range": "week", "language": "zh-TW"},
            {"freshness": "pw", "search_lang": "zh-hant", "country": "TW"},
            {"tbs": "qdr:w", "hl": "zh-tw", "gl": "tw"},
            {"time_range": "week"},
        ),
        (
            "month",
            "pt-BR",
            {"time_range": "month", "language": "pt-BR"},
            {"freshness": "pm", "search_lang": "pt-br", "country": "BR"},
            {"tbs": "qdr:m", "hl": "pt-br", "gl": "br"},
            {"time_range": "month"},
        ),
        (
            "year",
            "ja",
            {"time_range": "year", "language": "ja"},
            {"freshness": "py", "search_lang": "jp"},
            {"tbs": "qdr:y", "hl": "ja"},
            {"time_range": "year"},
        ),
    ],
)
async def test_each_engine_sends_the_time_range_and_language_as_its_api_takes_them(
    time_range: str,
    language: str,
    searx: dict[str, str],
    brave_sent: dict[str, str],
    serper_sent: dict[str, str],
    tavily_sent: dict[str, str],
) -> None:
    async with StaticSite(routes=ROUTES) as site:
        engines = web_engines(site.url)
        for engine in engines:
            arguments = {"time_range": time_range}
            if engine.supports_language(language):
                arguments["language"] = language
            hits = await engine.search("dune author", limit=5, **arguments)
            assert len(hits) == 1, engine.name
            await engine.aclose()
    assert seen["searxng"] == [{"q": "dune author", "format": "json", **searx}]
    assert seen["brave"] == [{"q": "dune author", "count": "5", **brave_sent}]
    assert seen["serper"] == [{"q": "dune author", "num": 5, **serper_sent}]
    assert seen["tavily"] == [
        {"query": "dune author", "max_results": 5, "api_key": "tavily-key", **tavily_sent}
    ], "Tavily takes no search language"


async def test_without_a_scope_the_requests_are_as_before() -> None:
    async with StaticSite(routes=ROUTES) as site:
        for engine in web_engines(site.url):
            await engine.search("dune author", limit=5)
            await engine.aclose()
    assert seen["searxng"] == [{"q": "dune author", "format": "json"}]
    assert seen["brave"] == [{"q": "dune author", "count": "5"}]
    assert seen["serper"] == [{"q": "dune author", "num": 5}]
    assert seen["tavily"] == [{"query": "dune author", "max_results": 5, "api_key": "tavily-key"}]


async def test_duckduckgo_gets_ddgs_timelimit_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    class FakeDDGS:
        def __init__(self, timeout: int) -> None:
            pass

        def text(self, query: str, **kwargs: Any) -> list[dict[str, str]]:
            calls.append(kwargs)
            return [{"href": "https://g.example", "title": "G", "body": "body"}]

    monkeypatch.setitem(sys.modules, "ddgs", types.SimpleNamespace(DDGS=FakeDDGS))
    engine = DuckDuckGoEngine(timeout=2)
    await engine.search("dune", limit=3, time_range="week", language="zh-TW")
    await engine.search("dune", limit=3, time_range="year", language="en-GB")
    await engine.search("dune", limit=3)
    assert calls == [
        {"max_results": 3, "backend": "duckduckgo", "timelimit": "w", "region": "tw-tzh"},
        {"max_results": 3, "backend": "duckduckgo", "timelimit": "y", "region": "uk-en"},
        {"max_results": 3, "backend": "duckduckgo"},
    ]
    assert engine.supports_language("de") and not engine.supports_language("xx")


def reply(request: Any) -> Any:
    if kind_of(request) == "queries":
        return '{"queries": ["dune author"]}'
    return "Dune was written by Frank Herbert [1]."


DOCS = [doc_hit("Dune", "Dune is a 1965 science fiction novel written by Frank Herbert.")]


async def ask(settings: Settings, engines: list[SearchEngine], question: str, **options: Any) -> list[Any]:
    async with MindSearch(settings, model=ScriptedModel(reply), engines=engines) as search:
        return [e async for e in search.stream(question, options={"depth": "quick", **options})]


async def test_a_run_scopes_every_engine_and_names_those_that_cannot_honour_it(
    tmp_path: Path,
) -> None:
    """Before, there was no time range or search language at all: each engine got the query alone."""
    settings = Settings(data_dir=tmp_path, pages_per_node=0, follow_up_rounds=0)
    async with StaticSite(routes=ROUTES) as site:
        engines = [*web_engines(site.url), MemoryEngine(DOCS)]
        events = await ask(settings, engines, "Who wrote Dune?", time_range="week", search_language="de-AT")
    assert {"time_range": "week", "language": "de-AT"}.items() <= seen["searxng"][0].items()
    assert {"freshness": "pw", "search_lang": "de", "country": "AT"}.items() <= seen["brave"][0].items()
    assert {"tbs": "qdr:w", "hl": "de", "gl": "at"}.items() <= seen["serper"][0].items()
    assert seen["tavily"][0]["time_range"] == "week" and "language" not in seen["tavily"][0]
    notes = sorted(e.message for e in events if e.type == "error")
    assert notes == [
        "memory: cannot limit results to the past week or limit results to the language de-AT; "
        "its results are used unfiltered",
        "tavily: cannot limit results to the language de-AT; its results are used unfiltered",
    ], "each engine that cannot honour the scope says so once, and the run goes on"
    assert events[-1].type == "done" and events[-1].ok


async def test_an_auto_search_language_is_the_questions_and_is_not_reported(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, pages_per_node=0, follow_up_rounds=0)
    async with StaticSite(routes=ROUTES) as site:
        engines = [*web_engines(site.url), MemoryEngine(DOCS)]
        zh = await ask(settings, engines, "沙丘这部小说的作者是谁？")
        en = await ask(settings.with_changes(language="zh"), engines, "Who wrote the novel Dune?")
    assert [q["language"] for q in seen["searxng"]] == ["zh", "en"], (
        "the question's language, not the answer's"
    )
    assert [q["search_lang"] for q in seen["brave"]] == ["zh-hans", "en"]
    assert [q["hl"] for q in seen["serper"]] == ["zh-cn", "en"]
    assert all("time_range" not in q for q in seen["searxng"])
    assert not [e for e in [*zh, *en] if e.type == "error"], "a guessed language is no note"


async def test_a_cached_result_is_not_reused_for_another_time_range(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, pages_per_node=0, follow_up_rounds=0)
    async with StaticSite(routes=ROUTES) as site:
        engine = SearxngEngine(site.url, timeout=5)
        for time_range in ("week", "week", "year", "any"):
            await ask(settings, [engine, MemoryEngine(DOCS)], "Who wrote Dune?", time_range=time_range)
        await engine.aclose()
    assert [q.get("time_range") for q in seen["searxng"]] == ["week", "year", None]


async def test_a_settings_time_range_applies_to_every_run(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, pages_per_node=0, follow_up_rounds=0, time_range="month")
    async with StaticSite(routes=ROUTES) as site:
        engine = SearxngEngine(site.url, timeout=5)
        await ask(settings, [engine], "Who wrote Dune?")
        await ask(settings, [engine], "Who wrote Dune Messiah?", time_range="any")
        await engine.aclose()
    assert [q.get("time_range") for q in seen["searxng"]] == ["month", None]

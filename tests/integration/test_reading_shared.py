"""Sibling sub-questions share searches and page reads: one request and one page-budget unit for both."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from aiohttp import web

from mindsearch import MindSearch, Settings
from mindsearch.llm.base import ModelRequest
from mindsearch.search.base import SearchHit
from mindsearch.testing import MemoryEngine, ScriptedModel, StaticSite, kind_of, plan_json
from mindsearch.web.coalesce import Coalescer

ARTICLE = "<html><body><article><p>{}</p></article></body></html>"
MOZILLA = "The Mozilla community was created in 1998 by members of Netscape. " * 4


def page(text: str, delay: float = 0.2) -> Any:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)  # slow enough that both siblings ask while it is in flight
        return web.Response(text=ARTICLE.format(text), content_type="text/html")

    return handler


ROUTES = {
    "/shared": page(MOZILLA),
    "/only-a": page("Mozilla was first a project of Netscape, created in 1998. " * 4),
    "/only-b": page("Netscape released the Mozilla source code in 1998. " * 4),
}


def sub_question(request: ModelRequest) -> str:
    match = re.search(r"Sub-question: (.*)", request.text)
    return match.group(1) if match else ""


def script(plan: str, query: Any = sub_question) -> Any:
    def handler(request: ModelRequest) -> str:
        kind = kind_of(request)
        if kind == "plan":
            return plan
        if kind == "queries":
            return json.dumps({"queries": [query(request)]})
        return "The Mozilla community was created in 1998 [1]."

    return handler


QUESTION = "What is the early history of the Mozilla project?"  # no echo of a sub-question
SIBLINGS = plan_json(
    ("a", "When was Mozilla created?", []), ("b", "Which company released the Mozilla source code?", [])
)


def web_settings(settings: Settings, **changes: Any) -> Settings:
    settings.allow_hosts, settings.page_timeout = ["127.0.0.1"], 5.0
    for name, value in changes.items():
        setattr(settings, name, value)
    return settings


def reads(events: list[Any], path: str) -> list[Any]:
    return [e for e in events if e.type == "page_read" and e.url.endswith(path)]


async def test_siblings_reading_the_same_page_fetch_it_once_and_pay_for_it_once(settings: Settings) -> None:
    async with StaticSite(routes=ROUTES) as site:

        def hits(query: str) -> list[SearchHit]:
            own = "/only-a" if "When" in query else "/only-b"
            return [
                SearchHit(site.url + "/shared", "Mozilla", "", "web"),
                SearchHit(site.url + own, "", "", "web"),
            ]

        # three distinct pages: the shared one costs one unit, so both siblings read all of theirs
        web_settings(settings, pages_per_question=3)
        engine = MemoryEngine(hits, name="web", is_web=True)
        async with MindSearch(settings, model=ScriptedModel(script(SIBLINGS)), engines=[engine]) as ms:
            events = [e async for e in ms.stream(QUESTION)]
    assert sorted(site.hits) == ["/only-a", "/only-b", "/shared"], "each page fetched once"
    shared = reads(events, "/shared")
    assert {e.node_id for e in shared} == {"a", "b"} and all(e.ok for e in shared)
    assert sorted(e.cached for e in shared) == [False, True], "one node fetched it, the other shared it"
    assert all(e.ok for e in reads(events, "/only-a") + reads(events, "/only-b"))
    assert events[-1].ok


async def test_a_page_read_earlier_in_the_run_is_not_fetched_again(settings: Settings) -> None:
    chain = plan_json(
        ("a", "When was Mozilla created?", []),
        ("b", "Which company released the Mozilla source code?", ["a"]),
    )
    async with StaticSite(routes=ROUTES) as site:
        hits = [SearchHit(site.url + "/shared", "Mozilla", "", "web")]
        web_settings(settings, cache_ttl=0)  # no disk cache: only the run remembers the page
        engine = MemoryEngine(hits, name="web", is_web=True)
        async with MindSearch(settings, model=ScriptedModel(script(chain)), engines=[engine]) as ms:
            events = [e async for e in ms.stream(QUESTION)]
            assert site.hits == ["/shared"]
            await ms.ask(QUESTION)
    assert [(e.node_id, e.ok, e.cached) for e in reads(events, "/shared")] == [
        ("a", True, False),
        ("b", True, True),
    ]
    assert site.hits == ["/shared", "/shared"], "a new run reads the page again (the cache is off)"


async def test_siblings_asking_an_engine_the_same_query_share_one_search(settings: Settings) -> None:
    hits = [SearchHit("doc://mozilla", "Mozilla", MOZILLA[:200], "memory", MOZILLA)]

    class Slow(MemoryEngine):
        async def search(self, query: str, *, limit: int) -> list[SearchHit]:
            await asyncio.sleep(0.1)  # both siblings ask while the first search is in flight
            return await super().search(query, limit=limit)

    engine = Slow(hits)
    settings.follow_up_rounds = 0  # only the siblings' own query: follow-ups would add their own
    model = ScriptedModel(script(SIBLINGS, query=lambda request: "mozilla created"))
    async with MindSearch(settings, model=model, engines=[engine]) as ms:
        events = [e async for e in ms.stream(QUESTION)]
    assert engine.queries == ["mozilla created"]
    results = [e for e in events if e.type == "search_results"]
    assert sorted(e.node_id for e in results) == ["a", "b"], "each node still reports its results"
    assert all(e.hits[0].url == "doc://mozilla" for e in results)


# -- the Coalescer itself ------------------------------------------------------------------------------
async def test_a_waiter_loads_itself_when_the_loading_caller_is_cancelled() -> None:
    shared: Coalescer[str, str] = Coalescer()
    calls: list[str] = []
    started = asyncio.Event()

    async def load(who: str) -> str:
        calls.append(who)
        started.set()
        await asyncio.sleep(0.05)
        return who

    owner = asyncio.create_task(shared.get("k", lambda: load("owner")))
    await started.wait()
    waiter = asyncio.create_task(shared.get("k", lambda: load("waiter")))
    await asyncio.sleep(0)
    owner.cancel()
    assert await waiter == ("waiter", False)
    assert calls == ["owner", "waiter"]
    with pytest.raises(asyncio.CancelledError):
        await owner


async def test_a_failed_load_is_not_kept_and_a_result_kept_only_when_asked() -> None:
    shared: Coalescer[str, int] = Coalescer()

    async def boom() -> int:
        raise RuntimeError("boom")

    async def value(n: int) -> int:
        return n

    with pytest.raises(RuntimeError):
        await shared.get("k", boom)
    assert "k" not in shared
    assert await shared.get("k", lambda: value(1), keep=lambda n: n > 1) == (1, False)
    assert "k" not in shared
    assert await shared.get("k", lambda: value(2), keep=lambda n: n > 1) == (2, False)
    assert await shared.get("k", lambda: value(3)) == (2, True), "kept: the later caller shares it"


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    shared: Coalescer[str, str] = Coalescer()

    async def load() -> str:
        await asyncio.sleep(0.05)
        return "page"

    owner = asyncio.create_task(shared.get("k", load))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(shared.get("k", load))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await owner == ("page", False)

"""Fetching and reading real pages served from 127.0.0.1, and the web path of a searcher."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from mindsearch import MindSearch, Settings
from mindsearch.search.base import SearchHit
from mindsearch.testing import MemoryEngine, ScriptedModel, StaticSite, kind_of, plan_json
from mindsearch.web.cache import Cache
from mindsearch.web.extract import TrafilaturaExtractor
from mindsearch.web.fetch import BlockedURL, FetchError, HttpFetcher, decode

LOOPBACK = ["127.0.0.1"]


def pages(shared: Path) -> Path:
    return shared / "html" / "readability_test_pages"


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(3)
    return web.Response(text="<html><body>late</body></html>", content_type="text/html")


async def huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    await response.prepare(request)
    for _ in range(200):
        await response.write(b"<p>" + b"x" * 10_000 + b"</p>")
    return response


async def binary(request: web.Request) -> web.Response:
    return web.Response(body=b"\x89PNG\r\n" + bytes(100), content_type="image/png")


async def latin1(request: web.Request) -> web.Response:
    body = "<html><head><meta charset='iso-8859-1'></head><body><p>Café crème à Zürich</p></body></html>"
    return web.Response(body=body.encode("latin-1"), headers={"Content-Type": "text/html"})


async def redirect_loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def to_refused(request: web.Request) -> web.Response:
    raise web.HTTPFound("http://127.0.0.2/secret")


ROUTES = {
    "/slow": slow,
    "/huge": huge,
    "/image": binary,
    "/latin1": latin1,
    "/loop": redirect_loop,
    "/to-refused": to_refused,
}


def fetcher(**kwargs: Any) -> HttpFetcher:
    options: dict[str, Any] = {"allow_hosts": LOOPBACK, "total_timeout": 1.0, "max_bytes": 200_000}
    options.update(kwargs)
    return HttpFetcher(**options)


async def test_real_page_is_fetched_and_its_main_text_extracted(shared: Path) -> None:
    async with StaticSite(pages(shared)) as site:
        f = fetcher()
        page = await f.fetch(f"{site.url}/wikipedia/source.html")
        await f.aclose()
    extracted = TrafilaturaExtractor().extract(page.text, page.final_url)
    assert "Mozilla" in extracted.title
    assert "free-software community, created in 1998" in extracted.text
    assert "function(" not in extracted.text  # no script text


@pytest.mark.parametrize(
    ("path", "message"),
    [("/missing", "HTTP 404"), ("/slow", "timed out"), ("/image", "not text"), ("/loop", "redirects")],
)
async def test_unreadable_pages_raise_a_clear_fetch_error(path: str, message: str) -> None:
    async with StaticSite(routes=ROUTES) as site:
        f = fetcher(max_redirects=3)
        with pytest.raises(FetchError, match=message):
            await f.fetch(site.url + path)
        await f.aclose()


async def test_size_cap_cuts_the_body() -> None:
    async with StaticSite(routes=ROUTES) as site:
        f = fetcher(max_bytes=50_000)
        page = await f.fetch(f"{site.url}/huge")
        await f.aclose()
    assert page.truncated and len(page.text) <= 50_000


async def test_charset_from_meta_tag() -> None:
    async with StaticSite(routes=ROUTES) as site:
        f = fetcher()
        page = await f.fetch(f"{site.url}/latin1")
        await f.aclose()
    assert "Café crème à Zürich" in page.text
    assert decode("Zürich".encode("cp1252"), None) == "Zürich"  # undeclared: windows-1252
    chinese = "北京是中华人民共和国的首都，也是全国的政治、文化中心。上海是中国最大的城市。"
    assert decode(chinese.encode("gb18030"), None) == chinese


async def test_a_page_cut_at_the_byte_cap_loses_only_the_character_cut_in_half() -> None:
    chinese = "北京是中华人民共和国的首都。" * 2000  # 3 bytes a character

    async def long_page(request: web.Request) -> web.Response:
        return web.Response(body=chinese.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})

    async with StaticSite(routes={"/long": long_page}) as site:
        f = fetcher(max_bytes=50_000)  # 50_000 = 3 * 16_666 + 2: the cap splits a character
        page = await f.fetch(f"{site.url}/long")
        await f.aclose()
    assert page.truncated and page.text == chinese[:16_666]


async def test_loopback_is_refused_unless_allowed() -> None:
    async with StaticSite(routes=ROUTES) as site:
        f = HttpFetcher(total_timeout=1.0)
        with pytest.raises(BlockedURL, match="loopback"):
            await f.fetch(f"{site.url}/latin1")
        with pytest.raises(BlockedURL, match="local name"):
            await f.fetch(f"http://localhost:{site.port}/latin1")
        with pytest.raises(BlockedURL, match="loopback"):
            await f.fetch(f"http://2130706433:{site.port}/latin1")  # 127.0.0.1 in decimal
        with pytest.raises(BlockedURL, match="scheme"):
            await f.fetch("file:///etc/passwd")
        await f.aclose()
        allowed = fetcher()
        with pytest.raises(BlockedURL, match="loopback"):  # the redirect leaves the allowed address
            await allowed.fetch(f"{site.url}/to-refused")
        await allowed.aclose()
    assert "/latin1" not in site.hits


DOC_TEXT = "Mozilla is a free-software community, created in 1998 by members of Netscape."


def web_script() -> Any:
    def handler(request: Any) -> str:
        kind = kind_of(request)
        if kind == "plan":
            return plan_json(("q1", "When was the Mozilla community created?", []))
        if kind == "queries":
            return '{"queries": ["mozilla community created"]}'
        if kind == "answer":
            assert "created in 1998" in request.text
            return "The Mozilla community was created in 1998 by members of Netscape [1]."
        return "Mozilla was created in 1998 [1]."

    return handler


async def test_searcher_reads_pages_skips_broken_ones_and_caches_everything(
    shared: Path, settings: Settings
) -> None:
    async with StaticSite(pages(shared), routes=ROUTES) as site:
        hits = [
            SearchHit(f"{site.url}/missing", "Missing", "", "web"),
            SearchHit(f"{site.url}/slow", "Slow", "", "web"),
            SearchHit(f"{site.url}/wikipedia/source.html", "Mozilla - Wikipedia", "Mozilla is...", "web"),
        ]
        settings.allow_hosts, settings.page_timeout = LOOPBACK, 1.0
        engine = MemoryEngine(hits, name="web", is_web=True)
        async with MindSearch(settings, model=ScriptedModel(web_script()), engines=[engine]) as ms:
            first = [e async for e in ms.stream("When was the Mozilla community created?")]
            fetched_once = list(site.hits)
            second = [e async for e in ms.stream("When was the Mozilla community created?")]
    reads = [e for e in first if e.type == "page_read"]
    assert {(e.url.rsplit("/", 1)[-1], e.ok) for e in reads} == {
        ("missing", False),
        ("slow", False),
        ("source.html", True),
    }
    done = first[-1]
    assert done.ok and done.references[0].url.endswith("/wikipedia/source.html")
    assert "1998" in done.answer and "[1]" in done.answer
    assert engine.queries == ["mozilla community created"], "the second run's search came from the cache"
    assert site.hits == fetched_once, "the second run fetched nothing"
    assert all(e.cached for e in second if e.type == "page_read" and e.ok)
    assert second[-1].answer == done.answer


def test_cache_keeps_values_until_they_expire(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite3", ttl=60)
    cache.put("page", "k", {"a": 1})
    assert cache.get("page", "k") == {"a": 1}
    assert Cache(tmp_path / "c.sqlite3", ttl=60).get("page", "k") == {"a": 1}, "kept on disk"
    cache.put("page", "old", {"b": 2}, ttl=-1)
    assert cache.get("page", "old") is None
    assert Cache(tmp_path / "off.sqlite3", ttl=0).get("page", "k") is None, "ttl 0 turns the cache off"


class StubResolver(AbstractResolver):
    """Resolves every name to 127.0.0.1, as a hostile DNS server would."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time() -> None:
    async with StaticSite(routes=ROUTES) as site:
        f = HttpFetcher(total_timeout=1.0, resolver=StubResolver())
        with pytest.raises(BlockedURL, match="resolves to refused addresses"):
            await f.fetch(f"http://innocent.example:{site.port}/latin1")
        await f.aclose()
        allowed = HttpFetcher(total_timeout=1.0, resolver=StubResolver(), allow_hosts=["127.0.0.0/8"])
        page = await allowed.fetch(f"http://innocent.example:{site.port}/latin1")
        await allowed.aclose()
    assert "Zürich" in page.text
    assert site.hits == ["/latin1"]

"""The SSRF guard. Private, link-local, CGNAT and metadata addresses are judged at the decision functions
(names through a stubbed resolver): no connection is tried. Live fetches only target loopback."""

from __future__ import annotations

import asyncio
import gzip
import socket

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from mindsearch.testing import StaticSite
from mindsearch.web.fetch import (
    AllowList,
    BlockedURL,
    GuardedResolver,
    HttpFetcher,
    check_url,
    literal_ip,
    refusal,
)

NO_ALLOW = AllowList.parse([])

# (URL, the words the refusal must contain)
REFUSED_URLS = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://017700000001/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://127.000.000.001/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[64:ff9b::7f00:1]/", "loopback"),
    ("http://[2002:7f00:1::]/", "loopback"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://[fd00:ec2::254]/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://2852039166/", "link-local"),
    ("http://[::ffff:a9fe:a9fe]/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://100.100.100.200/", "CGNAT"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://198.18.0.1/", "private"),
    ("http://localhost/", "local name"),
    ("http://LOCALHOST./", "local name"),
    ("http://api.localhost/", "local name"),
    ("http://metadata.google.internal/computeMetadata/v1/", "local name"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://127.0.0.1:25/", "scheme"),
    ("ftp://example.com/", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("http://user:pass@example.com/", "credentials"),
    ("http://evil.com\\@127.0.0.1/", "malformed"),
    ("http:///path-only", "no host"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS, ids=[u for u, _ in REFUSED_URLS])
def test_refused_urls(url: str, reason: str) -> None:
    with pytest.raises(BlockedURL, match=reason):
        check_url(url, NO_ALLOW)


def test_there_are_at_least_30_distinct_payloads() -> None:
    assert len({url for url, _ in REFUSED_URLS}) >= 30


@pytest.mark.parametrize(
    "url", ["https://example.com/a", "http://93.184.216.34/", "http://[2606:4700::1111]/"]
)
def test_public_urls_pass(url: str) -> None:
    check_url(url, NO_ALLOW)


def test_allow_list_lets_chosen_hosts_and_networks_through() -> None:
    allow = AllowList.parse(["127.0.0.1", "10.1.0.0/16", "intranet.example"])
    check_url("http://127.0.0.1:8080/", allow)
    check_url("http://10.1.2.3/", allow)
    check_url("http://intranet.example/", allow)
    with pytest.raises(BlockedURL):
        check_url("http://10.2.0.1/", allow)
    assert refusal(literal_ip("127.0.0.2") or pytest.fail(), allow) is not None


class StubResolver(AbstractResolver):
    """Answers from a table; never asks DNS."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in self.table[host]
        ]

    async def close(self) -> None:
        return None


RESOLVED = {
    "rebind.example": ["127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "corp.example": ["10.0.0.5", "192.168.0.9"],
    "v6.example": ["::1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "cgnat.example": ["100.64.1.1"],
    "mixed.example": ["10.0.0.1", "93.184.216.34"],
    "public.example": ["93.184.216.34"],
}


@pytest.mark.parametrize(
    "host",
    ["rebind.example", "metadata.example", "corp.example", "v6.example", "mapped.example", "cgnat.example"],
)
async def test_names_resolving_to_refused_addresses_are_refused(host: str) -> None:
    resolver = GuardedResolver(NO_ALLOW, StubResolver(RESOLVED))
    with pytest.raises(BlockedURL, match="resolves to refused addresses"):
        await resolver.resolve(host, 80)


async def test_only_the_checked_public_addresses_are_handed_to_the_connector() -> None:
    resolver = GuardedResolver(NO_ALLOW, StubResolver(RESOLVED))
    assert [r["host"] for r in await resolver.resolve("mixed.example", 80)] == ["93.184.216.34"]
    assert [r["host"] for r in await resolver.resolve("public.example", 80)] == ["93.184.216.34"]


# --- live, on loopback only ---------------------------------------------------------------------------
async def redirect_to(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["to"])


async def page(request: web.Request) -> web.Response:
    return web.Response(text="<html><body><p>secret</p></body></html>", content_type="text/html")


async def bomb(request: web.Request) -> web.Response:
    body = gzip.compress(b"\0" * 50_000_000, compresslevel=9)  # ~50 KB on the wire, 50 MB inflated
    return web.Response(body=body, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/page",
        "http://localhost:{port}/page",
        "http://[::1]:{port}/page",
        "http://2130706434:{port}/page",
        "file:///etc/passwd",
    ],
)
async def test_redirects_from_an_allowed_host_to_a_refused_one_are_not_followed(target: str) -> None:
    async with StaticSite(routes={"/r": redirect_to, "/page": page}) as site:
        fetcher = HttpFetcher(allow_hosts=["127.0.0.1"], total_timeout=2)
        with pytest.raises(BlockedURL):
            await fetcher.fetch(f"{site.url}/r?to=" + target.format(port=site.port))
        await fetcher.aclose()
    assert site.hits == ["/r"], "the refused target was never requested"


async def test_a_gzip_bomb_is_cut_at_the_byte_limit() -> None:
    async with StaticSite(routes={"/bomb": bomb}) as site:
        fetcher = HttpFetcher(allow_hosts=["127.0.0.1"], max_bytes=1_000_000, total_timeout=5)
        result = await fetcher.fetch(f"{site.url}/bomb")
        await fetcher.aclose()
    assert result.truncated and len(result.text) == 1_000_000


async def test_fetching_without_an_allow_list_never_reaches_loopback() -> None:
    async with StaticSite(routes={"/page": page}) as site:
        fetcher = HttpFetcher(total_timeout=2)
        for url in (
            f"{site.url}/page",
            f"http://127.1:{site.port}/page",
            f"http://[::ffff:127.0.0.1]:{site.port}/page",
        ):
            with pytest.raises(BlockedURL):
                await fetcher.fetch(url)
        await fetcher.aclose()
        await asyncio.sleep(0)
    assert site.hits == []

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


# --- the IANA special-purpose registries, table-driven ----------------------------------------------------
# (an address in each registry block that is not globally reachable, the word the refusal must hold)
SPECIAL_PURPOSE = [
    ("0.1.2.3", "this network"),
    ("10.255.0.1", "private"),
    ("100.127.255.254", "CGNAT"),
    ("127.255.255.254", "loopback"),
    ("169.254.0.1", "link-local"),
    ("172.31.255.1", "private"),
    ("192.0.0.1", "DS-Lite"),
    ("192.0.0.7", "DS-Lite"),
    ("192.0.0.8", "dummy"),
    ("192.0.0.170", "NAT64"),
    ("192.0.0.171", "NAT64"),
    ("192.0.0.254", "IETF protocol assignments"),
    ("192.0.2.77", "TEST-NET-1"),
    ("192.88.99.1", "6to4 relay"),
    ("192.168.255.255", "private"),
    ("198.19.255.1", "benchmarking"),
    ("198.51.100.9", "TEST-NET-2"),
    ("203.0.113.200", "TEST-NET-3"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::127.0.0.1", "outside IPv6 global unicast"),
    ("64:ff9b::a00:1", "private"),
    ("64:ff9b:1::1", "local-use"),
    ("100::1", "discard-only"),
    ("100:0:0:1::1", "dummy"),
    ("2001::1", "Teredo"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("2001:1::4", "IETF protocol assignments"),
    ("2001:2::1", "benchmarking"),
    ("2001:10::1", "ORCHID"),
    ("2001:1ff::1", "IETF protocol assignments"),
    ("2001:db8::1", "documentation"),
    ("2002:a00:1::", "private"),
    ("3fff::1", "documentation"),
    ("3fff:fff::1", "documentation"),
    ("5f00::1", "SRv6"),
    ("fc00::1", "unique local"),
    ("fdff::1", "unique local"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local"),
    ("fec0::1", "site-local"),
    ("feff::1", "site-local"),
    ("ff02::1", "multicast"),
    ("4000::1", "outside IPv6 global unicast"),
    ("e000::1", "outside IPv6 global unicast"),
]
# globally reachable: public addresses, and the registry rows marked globally reachable
GLOBAL = [
    "8.8.8.8",
    "93.184.216.34",
    "1.1.1.1",
    "192.0.0.9",  # Port Control Protocol anycast
    "192.0.0.10",  # TURN anycast
    "192.31.196.1",  # AS112-v4
    "192.52.193.1",  # AMT
    "192.175.48.1",  # AS112 direct delegation
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "2001:1::1",
    "2001:1::2",
    "2001:1::3",
    "2001:3::1",  # AMT
    "2001:4:112::1",  # AS112-v6
    "2001:20::1",  # ORCHIDv2
    "2001:30::1",  # drone remote ID
    "2620:4f:8000::1",  # AS112 direct delegation
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "why"), SPECIAL_PURPOSE, ids=[a for a, _ in SPECIAL_PURPOSE])
def test_every_special_purpose_block_is_refused(address: str, why: str) -> None:
    ip = literal_ip(address)
    assert ip is not None
    reason = refusal(ip, NO_ALLOW)
    assert reason is not None and why.lower() in reason.lower(), reason
    with pytest.raises(BlockedURL):
        check_url(f"http://{'[' + address + ']' if ':' in address else address}/", NO_ALLOW)


@pytest.mark.parametrize("address", GLOBAL)
def test_globally_reachable_addresses_pass(address: str) -> None:
    ip = literal_ip(address)
    assert ip is not None and refusal(ip, NO_ALLOW) is None


def test_the_table_covers_the_registries() -> None:
    """Every block of the registries that is not globally reachable has a row above."""
    from mindsearch.web.fetch import SPECIAL_NETWORKS

    covered = {str(net) for net, _ in SPECIAL_NETWORKS}
    registry = {
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
        "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "100:0:0:1::/64", "2001::/23", "2001::/32",
        "2001:2::/48", "2001:10::/28", "2001:db8::/32", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10",
    }  # fmt: skip
    assert registry <= covered, registry - covered


# --- the allow-list with ports ------------------------------------------------------------------------
def test_allow_list_entries_take_a_port() -> None:
    allow = AllowList.parse(["127.0.0.1:8080", "[::1]:8443", "intranet.example:8443", "10.1.0.0/16"])
    check_url("http://127.0.0.1:8080/", allow)
    check_url("http://[::1]:8443/", allow)
    check_url("https://intranet.example:8443/", allow)
    check_url("http://10.1.2.3:6379/", allow)  # a network without a port: every port
    for refused in (
        "http://127.0.0.1:8081/",
        "http://127.0.0.1/",
        "http://[::1]:8080/",
        "http://127.0.0.2:8080/",
    ):
        with pytest.raises(BlockedURL):
            check_url(refused, allow)
    assert allow.allows_host("intranet.example", 8443) and not allow.allows_host("intranet.example", 443)
    ip = literal_ip("127.0.0.1")
    assert ip is not None
    assert refusal(ip, allow, 8080) is None and refusal(ip, allow, 22) is not None
    assert refusal(ip, allow) is not None, "an unknown port matches only entries for every port"


async def test_a_resolved_name_is_held_to_the_allowed_port() -> None:
    resolver = GuardedResolver(AllowList.parse(["127.0.0.1:8080"]), StubResolver(RESOLVED))
    assert [r["host"] for r in await resolver.resolve("rebind.example", 8080)] == ["127.0.0.1"]
    with pytest.raises(BlockedURL):
        await resolver.resolve("rebind.example", 6379)
    named = GuardedResolver(AllowList.parse(["rebind.example:8080"]), StubResolver(RESOLVED))
    assert await named.resolve("rebind.example", 8080)
    with pytest.raises(BlockedURL):
        await named.resolve("rebind.example", 6379)


async def test_a_redirect_may_not_leave_the_allowed_port() -> None:
    """Allowing 127.0.0.1:<site> used to mean nothing (host:port never matched); allowing 127.0.0.1
    lets every port through, so list the port: then a redirect to another port is refused unfetched."""
    async with (
        StaticSite(routes={"/r": redirect_to, "/page": page}) as site,
        StaticSite(routes={"/page": page}) as other,
    ):
        fetcher = HttpFetcher(allow_hosts=[f"127.0.0.1:{site.port}"], total_timeout=2)
        fetched = await fetcher.fetch(f"{site.url}/page")
        with pytest.raises(BlockedURL):
            await fetcher.fetch(f"{site.url}/r?to=http://127.0.0.1:{other.port}/page")
        with pytest.raises(BlockedURL):
            await fetcher.fetch(f"{other.url}/page")
        await fetcher.aclose()
    assert "secret" in fetched.text
    assert other.hits == [], "the other port was never requested"
    assert site.hits == ["/page", "/r"]


# --- control characters in URLs, at the engine boundary ------------------------------------------------
INJECTED = "http://h.example/ref\n\n![p][r]\n\n[r]:\nhttp://h.example/img.png"


@pytest.mark.parametrize(
    "url",
    [
        INJECTED,
        "http://h.example/a\rb",
        "http://h.example/\tx",
        "http://h.example/\x00",
        "http://h/\x85",
        "http://h/\u2028",
    ],
)
async def test_engines_refuse_hits_whose_url_holds_a_control_character(url: str) -> None:
    from mindsearch.search.base import SearchEngine, SearchHit

    class Hostile(SearchEngine):
        name = "hostile"

        async def search(self, query: str, *, limit: int) -> list[SearchHit]:
            return [
                SearchHit(url, "poisoned", "", self.name),
                SearchHit("https://ok.example/a b", "ok", "", self.name),
            ]

    hits = await Hostile().search("q", limit=5)
    assert [hit.url for hit in hits] == ["https://ok.example/a b"]

"""Fetching pages: one shared aiohttp session, limits on everything, and a guard against SSRF.

URLs come from search results, so strangers choose them. Every hop (redirects are followed by hand)
is checked: http/https only, and the host must resolve to public addresses only. The check runs in the
session's resolver, so the connection goes to the very address that was checked (no DNS rebinding
between check and connect). ``allow_hosts`` lets listed hosts or networks through (tests on loopback).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from .. import _telemetry as telemetry
from .._errors import MindSearchError
from ..settings import Settings
from .charset import decode as decode  # re-exported: decoding is part of fetching
from .cpu import run_cpu

TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchError(MindSearchError, RuntimeError):
    """A page could not be read; the message says why in a few words."""


class BlockedURL(FetchError):
    """The URL points somewhere this fetcher never goes (private address, bad scheme...)."""


@dataclass(frozen=True)
class FetchedPage:
    url: str
    final_url: str
    status: int
    content_type: str
    text: str
    truncated: bool = False


class Fetcher(ABC):
    """Reads one URL into text; raises FetchError (or BlockedURL) when it cannot."""

    @abstractmethod
    async def fetch(self, url: str) -> FetchedPage: ...

    async def aclose(self) -> None:
        """Close sessions; the default has none."""


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks that may be fetched although private, each for one port or for any port.

    Entries are ``host``, ``host:port``, ``10.0.0.0/8``, ``127.0.0.1:8080`` or ``[::1]:8080``. An entry
    without a port lets every port of that host through; one with a port only that port, so a page on
    an allowed ``127.0.0.1:8080`` cannot redirect the fetcher to ``127.0.0.1:6379``.
    """

    hosts: frozenset[tuple[str, int | None]]
    networks: tuple[tuple[IPNetwork, int | None], ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        hosts: set[tuple[str, int | None]] = set()
        networks: list[tuple[IPNetwork, int | None]] = []
        for raw in entries:
            entry, port = _split_port(raw.strip())
            try:
                networks.append((ipaddress.ip_network(entry.strip("[]"), strict=False), port))
            except ValueError:
                hosts.add((entry.lower().rstrip("."), port))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str, port: int | None = None) -> bool:
        """Whether ``host`` is listed by name for this port (``None``: the port is not known, so only an
        entry for any port matches)."""
        name = host.lower().rstrip(".")
        return (name, None) in self.hosts or (port is not None and (name, port) in self.hosts)

    def allows_ip(self, ip: IPAddress, port: int | None = None) -> bool:
        return any(
            ip.version == net.version and ip in net and (allowed is None or allowed == port)
            for net, allowed in self.networks
        )


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port`` or ``[v6]:port`` into its parts; anything else has no port."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})", entry) or re.fullmatch(
        r"([^:\[\]]+):(\d{1,5})", entry
    )
    if match is None or not 0 < int(match.group(2)) < 65536:
        return entry, None
    return match.group(1), int(match.group(2))


# The IANA special-purpose address registries (IPv4 and IPv6, as of 2025), as (block, what it is).
# A block whose "Globally Reachable" is False or N/A is refused; the few True rows inside a refused
# block are in _GLOBAL_EXCEPTIONS. 64:ff9b::/96 (NAT64), ::ffff:0:0/96 (IPv4-mapped) and 2002::/16
# (6to4) carry an IPv4 address, which is judged instead. Multicast, and IPv6 outside 2000::/3 (global
# unicast: covers the old site-local fec0::/10), are refused too.
_SPECIAL: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "a reserved address ('this network', RFC 1122)"),
    ("10.0.0.0/8", "a private address (RFC 1918)"),
    ("100.64.0.0/10", "shared address space (CGNAT, RFC 6598)"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "link-local (cloud metadata lives here)"),
    ("172.16.0.0/12", "a private address (RFC 1918)"),
    ("192.0.0.0/29", "a reserved address (DS-Lite, RFC 6333)"),
    ("192.0.0.8/32", "a reserved address (IPv4 dummy address, RFC 7600)"),
    ("192.0.0.170/31", "a reserved address (NAT64/DNS64 discovery, RFC 8880)"),
    ("192.0.0.0/24", "a reserved address (IETF protocol assignments, RFC 6890)"),
    ("192.0.2.0/24", "a reserved address (documentation, TEST-NET-1)"),
    ("192.88.99.0/24", "a reserved address (deprecated 6to4 relay anycast, RFC 7526)"),
    ("192.168.0.0/16", "a private address (RFC 1918)"),
    ("198.18.0.0/15", "a private address (benchmarking, RFC 2544)"),
    ("198.51.100.0/24", "a reserved address (documentation, TEST-NET-2)"),
    ("203.0.113.0/24", "a reserved address (documentation, TEST-NET-3)"),
    ("255.255.255.255/32", "a reserved address (limited broadcast)"),
    ("240.0.0.0/4", "a reserved address (RFC 1112)"),
    ("224.0.0.0/4", "multicast"),
    ("::/128", "unspecified"),
    ("::1/128", "a loopback address"),
    ("64:ff9b:1::/48", "a reserved address (local-use IPv4/IPv6 translation, RFC 8215)"),
    ("100::/64", "a reserved address (discard-only, RFC 6666)"),
    ("100:0:0:1::/64", "a reserved address (dummy IPv6 prefix, RFC 9780)"),
    ("2001::/32", "a reserved address (Teredo, RFC 4380)"),
    ("2001:2::/48", "a reserved address (benchmarking, RFC 5180)"),
    ("2001:10::/28", "a reserved address (deprecated ORCHID, RFC 4843)"),
    ("2001::/23", "a reserved address (IETF protocol assignments, RFC 2928)"),
    ("2001:db8::/32", "a reserved address (documentation, RFC 3849)"),
    ("3fff::/20", "a reserved address (documentation, RFC 9637)"),
    ("5f00::/16", "a reserved address (SRv6 SIDs, RFC 9602)"),
    ("fc00::/7", "a private address (unique local, RFC 4193)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "a reserved address (deprecated site-local, RFC 3879)"),
    ("ff00::/8", "multicast"),
)
SPECIAL_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(block), what) for block, what in _SPECIAL
)
# registry rows marked globally reachable inside the refused blocks above
GLOBAL_EXCEPTIONS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(block)
    for block in (
        "192.0.0.9/32",  # Port Control Protocol anycast (RFC 7723)
        "192.0.0.10/32",  # TURN anycast (RFC 8155)
        "2001:1::1/128",  # Port Control Protocol anycast (RFC 7723)
        "2001:1::2/128",  # TURN anycast (RFC 8155)
        "2001:1::3/128",  # DNS-SD service registration protocol anycast (RFC 9665)
        "2001:3::/32",  # AMT (RFC 7450)
        "2001:4:112::/48",  # AS112-v6 (RFC 7535)
        "2001:20::/28",  # ORCHIDv2 (RFC 7343)
        "2001:30::/28",  # drone remote ID (RFC 9374)
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def refusal(ip: IPAddress, allow: AllowList, port: int | None = None) -> str | None:
    """Why this address must not be fetched, or None when it may be. The one place that decides.

    ``port`` is the port to be connected to, for allow-list entries that name one.
    """
    if allow.allows_ip(ip, port):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = refusal(embedded, allow, port)
            return f"{reason} (embedded in {ip})" if reason else None
    if any(ip.version == net.version and ip in net for net in GLOBAL_EXCEPTIONS):
        return None
    for net, what in SPECIAL_NETWORKS:
        if ip.version == net.version and ip in net:
            return f"{ip} is {what}"
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
        return f"{ip} is a reserved address (outside IPv6 global unicast 2000::/3)"
    return None


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names literally, in any notation a resolver would accept (decimal, hex, octal)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-FxX.]+", host) and any(ch.isdigit() for ch in host):
        try:  # inet_aton accepts 0x7f.1, 017700000001, 2130706433, 127.1 ...
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_url(url: str, allow: AllowList) -> str:
    """Return the host after checking scheme and literal addresses; raise BlockedURL when refused."""
    try:
        parts = URL(url)  # the parser aiohttp itself uses, so check and request read the URL alike
    except (ValueError, TypeError) as exc:
        raise BlockedURL(f"malformed URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise BlockedURL(f"scheme {parts.scheme or '(none)'!r} is not fetched, only http and https")
    host = parts.raw_host or ""
    if not host:
        raise BlockedURL("URL has no host")
    if parts.user is not None or parts.password is not None:
        raise BlockedURL("URLs with credentials are not fetched")
    port = parts.port  # the explicit port, or the scheme's
    if allow.allows_host(host, port):
        return host
    ip = literal_ip(host)
    if ip is not None:
        reason = refusal(ip, allow, port)
        if reason:
            raise BlockedURL(reason)
    if host.rstrip(".").lower() in ("localhost", "metadata.google.internal") or host.endswith(".localhost"):
        raise BlockedURL(f"{host} is a local name")
    return host


class GuardedResolver(AbstractResolver):
    """Resolves names, then removes every address ``refusal`` objects to; none left means refused."""

    def __init__(self, allow: AllowList, inner: AbstractResolver | None = None) -> None:
        self.allow = allow
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if self.allow.allows_host(host, port):
            return results
        safe, reasons = [], []
        for result in results:
            reason = refusal(ipaddress.ip_address(result["host"]), self.allow, port)
            if reason:
                reasons.append(reason)
            else:
                safe.append(result)
        if not safe:
            raise BlockedURL(f"{host} resolves to refused addresses: {'; '.join(reasons[:2])}")
        return safe

    async def close(self) -> None:
        await self.inner.close()


class HttpFetcher(Fetcher):
    def __init__(
        self,
        *,
        allow_hosts: Sequence[str] = (),
        concurrency: int = 16,
        per_host: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        total_timeout: float = 15.0,
        max_bytes: int = 3_000_000,
        max_redirects: int = 5,
        user_agent: str = "mindsearch",
        resolver: AbstractResolver | None = None,
        cpu_threads: int = 2,
    ) -> None:
        self.allow = AllowList.parse(allow_hosts)
        self.cpu_threads = cpu_threads
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.timeout = aiohttp.ClientTimeout(
            total=total_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._concurrency, self._per_host = concurrency, per_host
        self._headers = {
            "User-Agent": user_agent,
            "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9",
            "Accept-Encoding": "gzip, deflate",
        }
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpFetcher:
        return cls(
            allow_hosts=settings.allow_hosts,
            concurrency=settings.fetch_concurrency,
            per_host=settings.fetch_per_host,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            total_timeout=settings.page_timeout,
            max_bytes=settings.max_page_bytes,
            max_redirects=settings.max_redirects,
            user_agent=settings.user_agent,
            cpu_threads=settings.cpu_threads,
        )

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._concurrency,
                limit_per_host=self._per_host,
                resolver=GuardedResolver(self.allow, self._resolver),
                ttl_dns_cache=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, headers=self._headers, auto_decompress=False
            )
        return self._session

    @telemetry.observe_fetch  # timed, counted by outcome, logged and traced
    async def fetch(self, url: str) -> FetchedPage:
        try:
            return await asyncio.wait_for(self._fetch(url), self.timeout.total)
        except asyncio.TimeoutError as exc:
            raise FetchError(f"timed out after {self.timeout.total:g} s") from exc
        except BlockedURL:
            raise
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedURL):
                raise exc.os_error from exc
            raise FetchError(f"cannot connect: {exc.os_error or exc}") from exc
        except (aiohttp.ClientError, OSError, UnicodeError) as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from exc

    async def _fetch(self, url: str) -> FetchedPage:
        session = self._get_session()
        current = url
        for _hop in range(self.max_redirects + 1):
            check_url(current, self.allow)
            async with session.get(current, allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError(f"HTTP {response.status} without a Location")
                    current = str(URL(current).join(URL(location)))
                    continue
                if response.status >= 400:
                    raise FetchError(f"HTTP {response.status}")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if content_type and content_type not in TEXT_TYPES:
                    raise FetchError(f"content type {content_type} is not text")
                body, truncated = await self._read_capped(response)
                status, charset = response.status, response.charset
            # detection and decoding of a few MB are CPU work: a worker thread, so the loop goes on
            text = await run_cpu(self.cpu_threads, decode, body, charset, truncated=truncated)
            return FetchedPage(url, current, status, content_type or "text/html", text, truncated)
        raise FetchError(f"more than {self.max_redirects} redirects")

    async def _read_capped(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        """At most ``max_bytes`` of the body, counted after decompression, which is bounded too."""
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
            raise FetchError(f"content encoding {encoding} is not supported")
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding not in ("identity", "") else None
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(65536):
            if inflater is not None:
                try:
                    chunk = inflater.decompress(chunk, self.max_bytes - size + 1)
                except zlib.error as exc:
                    raise FetchError(f"the {encoding} body is corrupt: {exc}") from exc
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.max_bytes or (inflater is not None and inflater.unconsumed_tail):
                return b"".join(chunks)[: self.max_bytes], True
        return b"".join(chunks), False

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

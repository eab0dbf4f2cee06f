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

from ..settings import Settings
from .charset import decode as decode  # re-exported: decoding is part of fetching
from .cpu import run_cpu

TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchError(RuntimeError):
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
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        hosts, networks = set(), []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_ip(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


def refusal(ip: IPAddress, allow: AllowList) -> str | None:
    """Why this address must not be fetched, or None when it may be. The one place that decides."""
    if allow.allows_ip(ip):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            reason = refusal(embedded, allow)
            return f"{reason} (embedded in {ip})" if reason else None
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            return refusal(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), allow)
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is link-local (cloud metadata lives here)"
    if ip.is_multicast:
        return f"{ip} is multicast"
    if ip.is_unspecified:
        return f"{ip} is unspecified"
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
        return f"{ip} is shared address space (CGNAT)"
    if ip.is_reserved:
        return f"{ip} is a reserved address"
    if ip.is_private:
        return f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is a reserved address"
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
    if allow.allows_host(host):
        return host
    ip = literal_ip(host)
    if ip is not None:
        reason = refusal(ip, allow)
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
        if self.allow.allows_host(host):
            return results
        safe, reasons = [], []
        for result in results:
            reason = refusal(ipaddress.ip_address(result["host"]), self.allow)
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

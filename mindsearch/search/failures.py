"""Why a web engine failed, in the few words a user reads: "no network", "rate limited", "cannot connect".

Engines raise ``SearchError`` with ``"<engine>: <reason>"``; the run says it once per engine ("duckduckgo:
no network; going on with local"). The raw exception (a chain of library errors, URLs with tracking
parameters) goes to the log, shown with ``-v``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

log = logging.getLogger("mindsearch.search")

# lower-case fragments of library messages (aiohttp, primp/reqwest, the OS), checked in this order
_REASONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "no network",
        (
            "dnserror",
            "dns error",
            "failed to lookup address",
            "name or service not known",
            "temporary failure in name resolution",
            "nodename nor servname",
            "no address associated",
            "getaddrinfo failed",
            "cannot resolve",
            "network is unreachable",
            "network unreachable",
            "no route to host",
        ),
    ),
    ("rate limited", ("ratelimit", "rate limit", "too many requests", "http 429", "status code 429")),
    ("no answer in time", ("timed out", "timeout", "deadline")),
    ("TLS error", ("certificate verify", "sslerror", "ssl handshake", "tls handshake")),
    ("cannot connect", ("connection refused", "connecterror", "connection reset", "cannot connect")),
)


def reason(exc: BaseException) -> str:
    """A few words for what went wrong: the exception chain's type names and messages, matched."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        if isinstance(item, socket.gaierror):
            return "no network"
        if isinstance(item, (asyncio.TimeoutError, TimeoutError)):
            return "no answer in time"
        if isinstance(item, ssl.SSLError):
            return "TLS error"
    text = " ".join(f"{type(item).__name__} {item}" for item in chain).lower()
    for words, fragments in _REASONS:
        if any(fragment in text for fragment in fragments):
            return words
    return "failed (-v shows why)"


def raw(exc: BaseException) -> str:
    """The exception as the log shows it: type and message, one line, not too long."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 1000 else text[:997] + "..."

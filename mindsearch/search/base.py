"""The search-engine interface: a query in, ranked hits out.

Web engines return a URL and a snippet; the searcher fetches the page. The local index returns the
document text itself in ``text``, so nothing is fetched for it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class SearchHit:
    url: str
    title: str
    snippet: str
    engine: str
    text: str | None = None  # full text when the engine already has it (local index)

    @property
    def key(self) -> str:
        return normalise_url(self.url)


class SearchError(RuntimeError):
    """An engine could not answer (network, HTTP status, bad reply); the message says which and why."""


class SearchEngine(ABC):
    name: str = "engine"
    is_web: bool = True

    @abstractmethod
    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Up to ``limit`` hits, best first. Raise SearchError when the engine fails."""

    async def check(self) -> tuple[bool, str]:
        """Whether the engine can be reached, and a few words on it (for the server's /health)."""
        return True, "configured"

    async def aclose(self) -> None:
        """Release sessions; the default has none."""


def normalise_url(url: str) -> str:
    """The form used to dedupe hits: lowercase scheme and host, no fragment, no trailing slash."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    if not parts.scheme or not parts.netloc:
        return url.strip()
    path = parts.path.rstrip("/") or "/"
    host = parts.netloc.lower()
    if host.startswith("www."):
        host = host[4:]
    return urlunsplit((parts.scheme.lower(), host, path, parts.query, ""))

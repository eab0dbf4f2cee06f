"""The search-engine interface: a query in, ranked hits out.

Web engines return a URL and a snippet; the searcher fetches the page. The local index returns the
document text itself in ``text``, so nothing is fetched for it.

Engines are a boundary: what they return comes from strangers. A hit whose URL holds a control
character (``\\r``, ``\\n``, ``\\t``, NUL, DEL, C1, U+2028/9) is refused here, for every engine
(subclasses' ``search`` is wrapped), because URL parsers drop such characters while a renderer shows
the raw string: ``http://h/x\\n\\n![p](http://h/img.png)`` would be a link and an image in Markdown.
"""

from __future__ import annotations

import functools
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators (a space is allowed:
# local documents' paths may hold one, and links percent-encode it)
_UNSAFE_IN_URL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def url_problem(url: str) -> str | None:
    """Why a URL from an engine is refused (a control character in it), or None."""
    bad = _UNSAFE_IN_URL.search(url)
    if bad is not None:
        return f"the URL holds the control character U+{ord(bad.group()):04X}"
    return None


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

    @property
    def safe(self) -> bool:
        """Whether the URL may leave the engine (no control character in it)."""
        return url_problem(self.url) is None


class SearchError(RuntimeError):
    """An engine could not answer (network, HTTP status, bad reply); the message says which and why."""


SearchMethod = Callable[..., Awaitable[list[SearchHit]]]


def _refusing_unsafe_urls(search: SearchMethod) -> SearchMethod:
    @functools.wraps(search)
    async def wrapped(self: SearchEngine, query: str, *args: Any, **kwargs: Any) -> list[SearchHit]:
        hits = await search(self, query, *args, **kwargs)
        kept = [hit for hit in hits if hit.safe]
        if len(kept) < len(hits):
            log.warning(
                "%s: %d hit(s) with a control character in the URL refused", self.name, len(hits) - len(kept)
            )
        return kept

    wrapped.__refuses_unsafe_urls__ = True  # type: ignore[attr-defined]
    return wrapped


class SearchEngine(ABC):
    name: str = "engine"
    is_web: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every engine's ``search`` drops hits with unsafe URLs, whoever wrote the engine."""
        super().__init_subclass__(**kwargs)
        search = cls.__dict__.get("search")
        if search is not None and not getattr(search, "__refuses_unsafe_urls__", False):
            cls.search = _refusing_unsafe_urls(search)  # type: ignore[method-assign,assignment]

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

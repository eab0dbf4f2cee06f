"""The search-engine interface: a query in, ranked hits out.

Web engines return a URL and a snippet; the searcher fetches the page. The local index returns the
document text itself in ``text``, so nothing is fetched for it.

Beyond the query, a run may ask for a time range and a search language (``SearchScope``). An engine
declares what it honours (``time_ranges``, ``supports_language``) and its ``search`` takes the matching
keywords (``time_range``, ``language``); the searcher passes only what the engine declares, so an engine
written against ``search(query, *, limit)`` keeps working, and the run says once that it cannot honour
the scope (``scope_note``) rather than ignoring it silently.

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
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from .._errors import MindSearchError

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


class SearchError(MindSearchError, RuntimeError):
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


TimeRange = Literal["day", "week", "month", "year"]
TIME_RANGES: tuple[TimeRange, ...] = ("day", "week", "month", "year")
_TIME_RANGE: dict[str, TimeRange] = {name: name for name in TIME_RANGES}


class SearchEngine(ABC):
    """A search engine. ``search(query, *, limit)`` is all an engine must have; one that can limit its
    results by date lists the ranges in ``time_ranges`` and takes ``time_range=``, one that can limit
    them by language sets ``takes_language`` (or overrides ``supports_language``) and takes
    ``language=`` (a BCP 47 code: ``en``, ``zh``, ``zh-TW``, ``pt-BR``)."""

    name: str = "engine"
    is_web: bool = True
    time_ranges: ClassVar[frozenset[str]] = frozenset()  # the time ranges ``search`` honours
    takes_language: ClassVar[bool] = False  # whether ``search`` takes ``language``

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every engine's ``search`` drops hits with unsafe URLs, whoever wrote the engine."""
        super().__init_subclass__(**kwargs)
        search = cls.__dict__.get("search")
        if search is not None and not getattr(search, "__refuses_unsafe_urls__", False):
            cls.search = _refusing_unsafe_urls(search)  # type: ignore[method-assign,assignment]

    @abstractmethod
    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Up to ``limit`` hits, best first. Raise SearchError when the engine fails.

        Engines that declare them also take ``time_range`` (one of ``time_ranges``) and ``language``
        (a code ``supports_language`` accepts) as keywords; they are never passed to other engines."""

    def supports_language(self, language: str) -> bool:
        """Whether ``search`` can limit its results to ``language`` (by default: ``takes_language``)."""
        return self.takes_language

    async def check(self) -> tuple[bool, str]:
        """Whether the engine can be reached, and a few words on it (for the server's /health)."""
        return True, "configured"

    async def aclose(self) -> None:
        """Release sessions; the default has none."""


@dataclass(frozen=True)
class SearchScope:
    """What a run asks of every engine beyond the query: results from a ``time_range`` only, and in a
    ``language``. ``language_chosen`` is false when the language was guessed from the question (auto):
    an engine that cannot honour a guess is not reported, one that cannot honour a choice is."""

    time_range: TimeRange | None = None
    language: str | None = None
    language_chosen: bool = False

    def arguments(self, engine: SearchEngine) -> dict[str, str]:
        """The keywords ``engine.search`` is given: only those it declares it honours."""
        given: dict[str, str] = {}
        if self.time_range and self.time_range in engine.time_ranges:
            given["time_range"] = self.time_range
        if self.language and engine.supports_language(self.language):
            given["language"] = self.language
        return given

    def key(self, engine: SearchEngine) -> str:
        """What a cached result of ``engine`` must also match: the arguments it is given ("" for none)."""
        return "".join(f"\x00{name}={value}" for name, value in sorted(self.arguments(engine).items()))

    def unsupported(self, engine: SearchEngine) -> list[str]:
        """What ``engine`` cannot honour, in words ("limit results to the past week")."""
        missing: list[str] = []
        if self.time_range and self.time_range not in engine.time_ranges:
            missing.append(f"limit results to the past {self.time_range}")
        if self.language and self.language_chosen and not engine.supports_language(self.language):
            missing.append(f"limit results to the language {self.language}")
        return missing


def scope_for(question: str, *, time_range: str, search_language: str) -> SearchScope:
    """The scope of a search for ``question`` under the settings ``time_range`` (``any``: none) and
    ``search_language`` (``auto``: the question's language, as ``detect_language`` tells it)."""
    from .._text import detect_language

    chosen = search_language != "auto"
    return SearchScope(
        time_range=_TIME_RANGE.get(time_range),  # "any" is none
        language=search_language if chosen else detect_language(question),
        language_chosen=chosen,
    )


def language_parts(code: str) -> tuple[str, str | None, str | None]:
    """A language code's language, script and region: ``zh-Hant-TW`` -> ``("zh", "Hant", "TW")``."""
    language, *rest = code.split("-")
    script = next((part.title() for part in rest if len(part) == 4), None)
    region = next((part.upper() for part in rest if len(part) in (2, 3)), None)
    return language.lower(), script, region


def scope_note(engine: str, missing: list[str]) -> str:
    """The run's one note about an engine that cannot honour the scope."""
    return f"{engine}: cannot {' or '.join(missing)}; its results are used unfiltered"


_WHAT = r"limit results to (?:the past (?:day|week|month|year)|the language [A-Za-z0-9-]{2,20})"
_SCOPE_NOTE = re.compile(
    rf"[a-z0-9][a-z0-9_.-]{{0,39}}: cannot {_WHAT}(?: or {_WHAT})?; its results are used unfiltered"
)


def is_scope_note(message: str) -> bool:
    """Whether ``message`` is exactly a ``scope_note`` (engine names and codes only: nothing secret)."""
    return _SCOPE_NOTE.fullmatch(message) is not None


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

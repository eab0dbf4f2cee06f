"""Main-text extraction: trafilatura first (best measured quality), BeautifulSoup as the fallback.

Extraction is CPU work; the searcher runs it in a worker thread so the event loop keeps serving
other nodes while a page is parsed. A thread only helps while Python code runs: one long regex or lxml
call holds the GIL, and the loop with it, until it returns. So metadata, of which only the title is
used, is read from the page's start without trafilatura's date search, whose regexes scan all they get.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from bs4 import BeautifulSoup


@dataclass(frozen=True)
class Extracted:
    title: str
    text: str


class Extractor(ABC):
    @abstractmethod
    def extract(self, html: str, url: str) -> Extracted:
        """The page's title and main text (empty text when there is none)."""


class SoupExtractor(Extractor):
    """Visible text of the page minus scripts, styles and navigation: robust, but keeps boilerplate."""

    def extract(self, html: str, url: str) -> Extracted:
        soup = BeautifulSoup(html, "lxml")
        title = soup.title.get_text(" ", strip=True) if soup.title else ""
        for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg"]):
            tag.decompose()
        root = soup.find("article") or soup.find("main") or soup.body or soup
        text = root.get_text("\n", strip=True)
        return Extracted(title, re.sub(r"\n{3,}", "\n\n", text))


class TrafilaturaExtractor(Extractor):
    def __init__(self, metadata_chars: int = 100_000) -> None:
        self.fallback = SoupExtractor()
        # the title is in the head or near the top; on a whole 1 MB page the metadata regexes held the
        # GIL for ~80 ms at a time
        self.metadata_chars = metadata_chars

    def extract(self, html: str, url: str) -> Extracted:
        import trafilatura  # imported here: it is slow to import and only needed for web pages

        try:
            text = trafilatura.extract(
                html, url=url, include_comments=False, include_tables=True, favor_recall=True
            )
            metadata = trafilatura.extract_metadata(
                html[: self.metadata_chars], default_url=url, extensive=False
            )
        except Exception:  # trafilatura can raise on odd markup; the fallback still reads the page
            text, metadata = None, None
        if not text or len(text) < 200:
            fallback = self.fallback.extract(html, url)
            if len(fallback.text) > len(text or ""):
                return Extracted(fallback.title or (metadata.title if metadata else "") or "", fallback.text)
        title = (metadata.title if metadata and metadata.title else "") or ""
        if not title:
            title = self.fallback.extract(html[:20000], url).title
        return Extracted(title, text or "")


class PlainTextExtractor(Extractor):
    def extract(self, html: str, url: str) -> Extracted:
        first = html.strip().splitlines()[0][:120] if html.strip() else url
        return Extracted(first, html)

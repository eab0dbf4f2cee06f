"""Citations: one number per source in order of first use, checked against what the source says.

A model's ``[n]`` markers are held back while its text streams and released at the end of their
sentence. Each marker is checked: a number that names no source is dropped ("dangling"); a source whose
passages do not contain enough of the sentence's words is dropped ("unsupported", only when sentence and
source share a language, since word overlap cannot judge a translation). A factual sentence left
without a citation gets the source that supports it best, if one does so well enough. Numbers are then
given by a ``Registry`` in order of first use, so the output has 1..N with no gaps.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .events import Reference
from .text import detect_language, overlap, tokens


@dataclass
class Source:
    """A page or document that passages came from; ``key`` is its normalised URL or path."""

    key: str
    title: str
    url: str
    passages: list[str] = field(default_factory=list)

    def support(self, sentence: str) -> float:
        return max((overlap(sentence, passage) for passage in self.passages), default=0.0)

    @property
    def language(self) -> str:
        return detect_language(" ".join(self.passages)[:2000])


class Registry:
    """Gives each source one number, in order of first use."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._sources: list[Source] = []

    def number(self, source: Source) -> int:
        if source.key not in self._numbers:
            self._sources.append(source)
            self._numbers[source.key] = len(self._sources)
        return self._numbers[source.key]

    def references(self) -> list[Reference]:
        return [Reference(n=i + 1, title=s.title, url=s.url) for i, s in enumerate(self._sources)]

    @property
    def sources(self) -> list[Source]:
        return list(self._sources)


MARKER = re.compile(r"\[(\d{1,3}(?:\s*(?:,|，|\]\[)\s*\d{1,3})*)\]")
_TERMINAL = ".!?。！？"
_MARKER_CHARS = set("0123456789, ，][")


@dataclass
class Dropped:
    marker: str
    reason: str


class CitationStream:
    """Turns streamed model text into text whose citations are checked and renumbered.

    ``sources`` maps the numbers the model was shown to sources; ``registry`` gives the numbers the
    reader sees. Feed pieces with ``feed`` and emit what it returns; call ``finish`` at the end.
    """

    def __init__(
        self,
        sources: dict[int, Source],
        registry: Registry,
        *,
        min_support: float,
        attach_support: float,
        on_drop: Callable[[Dropped], None] | None = None,
    ) -> None:
        self.sources = sources
        self.registry = registry
        self.min_support = min_support
        self.attach_support = attach_support
        self.on_drop = on_drop
        self.dropped: list[Dropped] = []
        self._sentence = ""  # plain text of the current sentence, already emitted
        self._markers: list[tuple[str, int]] = []  # (marker text, number) held for this sentence
        self._bracket = ""  # an open "[..." that may be a marker
        self._punct = ""  # terminal punctuation held back until we know the sentence ended
        self._last = ""
        self._space = False
        self.text = ""  # everything emitted so far

    # -- streaming ---------------------------------------------------------------------------------
    def feed(self, piece: str) -> str:
        out: list[str] = []
        for char in piece:
            self._step(char, out)
        return self._emit(out)

    def finish(self) -> str:
        out: list[str] = []
        if self._bracket:
            self._plain(self._bracket, out)
            self._bracket = ""
        self._end_sentence(out, trailing="")
        return self._emit(out)

    def _emit(self, out: list[str]) -> str:
        text = "".join(out)
        self.text += text
        return text

    def _step(self, char: str, out: list[str]) -> None:
        if self._bracket:
            self._bracket += char
            match = MARKER.fullmatch(self._bracket)
            if match:
                for number in re.findall(r"\d+", match.group(1)):
                    self._markers.append((f"[{number}]", int(number)))
                self._bracket = ""
            elif char not in _MARKER_CHARS or len(self._bracket) > 40:
                text, self._bracket = self._bracket, ""
                for c in text:
                    self._plain(c, out)
            return
        if char == "[":
            self._bracket = "["
            return
        self._plain(char, out)

    def _plain(self, char: str, out: list[str]) -> None:
        if self._punct:
            if (char.isspace() or char == "\n") and not (
                self._punct == "." and _abbreviation(self._sentence)
            ):
                self._end_sentence(out, trailing=char)
                return
            if char in _TERMINAL:
                self._punct += char
                return
            # "3.5", "e.g": not a sentence end after all
            self._write(self._punct, out)
            self._punct = ""
        if char in _TERMINAL:
            self._punct = char
            if char in "。！？":  # CJK sentences end without a space
                self._end_sentence(out, trailing="")
            return
        if char == "\n":
            self._end_sentence(out, trailing="\n")
            return
        if char == " ":
            self._space = True  # held: a marker or punctuation may follow
            return
        if self._space:
            if char not in ",;:)" and self._sentence:
                self._write(" ", out)
            self._space = False
        self._write(char, out)

    def _write(self, text: str, out: list[str]) -> None:
        out.append(text)
        self._sentence += text
        self._last = text[-1:]

    # -- checking ----------------------------------------------------------------------------------
    def _end_sentence(self, out: list[str], trailing: str) -> None:
        numbers = self._check(self._sentence, self._markers)
        if numbers:
            out.append(" " + "".join(f"[{n}]" for n in numbers))
        if self._punct:
            out.append(self._punct)
        if trailing:
            out.append(trailing)
        self._last = trailing[-1:] if trailing else (self._punct[-1:] or self._last)
        self._sentence, self._markers, self._punct, self._space = "", [], "", False

    def _check(self, sentence: str, markers: list[tuple[str, int]]) -> list[int]:
        kept: list[Source] = []
        language = detect_language(sentence) if sentence.strip() else "en"
        for marker, number in markers:
            source = self.sources.get(number)
            if source is None:
                self._drop(marker, "dangling")
                continue
            checkable = source.language == language
            if checkable and source.support(sentence) < self.min_support:
                self._drop(marker, "unsupported")
                continue
            if source not in kept:
                kept.append(source)
        words = len(set(tokens(sentence)))
        if not kept and words:
            # a short sentence ("The Exies.") must be found whole; a longer one well enough
            needed = self.attach_support if words >= 3 else 1.0
            best = max(self.sources.values(), key=lambda s: s.support(sentence), default=None)
            if best is not None and best.support(sentence) >= needed:
                kept.append(best)
        return sorted({self.registry.number(source) for source in kept})

    def _drop(self, marker: str, reason: str) -> None:
        dropped = Dropped(marker, reason)
        self.dropped.append(dropped)
        if self.on_drop is not None:
            self.on_drop(dropped)


_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "st",
    "jr",
    "sr",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "no",
    "fig",
    "inc",
}


def _abbreviation(sentence: str) -> bool:
    """Whether the sentence so far ends in an initial ("Thomas V") or an abbreviation ("Dr")."""
    words = sentence.rstrip().split()
    if not words:
        return False
    last = words[-1].strip("(\"'")
    return (
        (len(last) == 1 and last.isupper())
        or last.lower() in _ABBREVIATIONS
        or bool(re.fullmatch(r"([A-Z]\.)+[A-Z]", last))
    )


def renumber(text: str, mapping: dict[int, int]) -> str:
    """Rewrite ``[n]`` markers through ``mapping``; numbers not in it are removed."""

    def replace(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
        return "".join(f"[{mapping[n]}]" for n in numbers if n in mapping)

    return MARKER.sub(replace, text)


def strip_markers(text: str) -> str:
    return re.sub(r"\s*" + MARKER.pattern, "", text)


def reference_list(references: list[Reference]) -> str:
    return "\n".join(f"[{ref.n}] {ref.title} - {ref.url}" for ref in references)

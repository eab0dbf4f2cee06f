"""Stage 2 of citations: find citation markers in every style real models write.

``[1]``, ``[1, 2]``, ``[1，2]``, ``[1-3]``, ``[^1]``, ``[1][2]``, InternLM's ``[[1]]``, ``【1】``,
``【1†source】``, ``［1］``, ``[citation:1]``, ``[Source 2]`` and ``[1](https://...)`` are all one
thing: a claim that the text before them comes from sources 1, 2, 3. Numbers have at most three
digits, so ``[1990]`` and ``[2010-2014]`` stay text; a range is expanded only when it is short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

MAX_RANGE = 20  # "[1-3]" is three citations; "[1-300]" is not a citation at all

_NUMBER = r"\^?\s*\d{1,3}"
_SEPARATOR = r"\s*(?:[,，、;；]|\band\b|&|[-–—~～])\s*"
_LIST = rf"{_NUMBER}(?:{_SEPARATOR}{_NUMBER})*"
_PREFIX = r"(?:(?:citations?|cite|sources?|refs?|references?|来源|引用|参考)\s*[:：#]?\s*)?"
_LINK = r"(?:\((?:https?://|\#)[^\s()]{0,300}\))?"  # "[1](https://...)": the URL is the model's, dropped
MARKER = re.compile(
    rf"""
    \[\[\s*(?P<double>{_LIST})\s*\]\]{_LINK}                 # [[1]], [[1, 2]] (InternLM)
    | \[\s*{_PREFIX}(?P<square>{_LIST})\s*\]{_LINK}          # [1], [1, 2], [1-3], [^1], [citation:1]
    | 【\s*{_PREFIX}(?P<lenticular>{_LIST})\s*(?:†[^】\n]{{0,40}})?】   # 【1】, 【1†source】
    | ［\s*(?P<fullwidth>{_LIST})\s*］                       # ［1］
    """,
    re.VERBOSE | re.IGNORECASE,
)
_OPENERS = "[【［"
_PARTIAL = regex.compile(MARKER.pattern, regex.VERBOSE | regex.IGNORECASE)
MAX_MARKER_CHARS = 360


@dataclass(frozen=True)
class Marker:
    """One marker: where it stands in the text, what it says, and the source numbers it names."""

    start: int
    end: int
    text: str
    numbers: tuple[int, ...]


def numbers_in(body: str) -> tuple[int, ...] | None:
    """The source numbers a marker's inside names, ranges expanded; None when it is no citation."""
    numbers: list[int] = []
    parts = re.split(r"(\d{1,3})", body)
    pending_range = False
    for index in range(1, len(parts), 2):
        value = int(parts[index])
        if pending_range and numbers:
            low = numbers[-1]
            if value < low or value - low > MAX_RANGE:
                return None
            numbers.extend(range(low + 1, value + 1))
        else:
            numbers.append(value)
        separator = parts[index + 1] if index + 1 < len(parts) else ""
        pending_range = bool(re.search(r"[-–—~～]", separator))
    if not numbers or 0 in numbers:
        return None
    return tuple(dict.fromkeys(numbers))


def find_markers(text: str) -> list[Marker]:
    """Every marker in ``text``, in order (text inside backticks is code and holds none)."""
    code = _code_spans(text)
    found: list[Marker] = []
    for match in MARKER.finditer(text):
        if any(start <= match.start() < end for start, end in code):
            continue
        body = next(group for group in match.groups() if group is not None)
        numbers = numbers_in(body)
        if numbers is not None:
            found.append(Marker(match.start(), match.end(), match.group(0), numbers))
    return found


def partial_marker_start(text: str) -> int | None:
    """Where a marker that may still grow begins at the very end of ``text``, else None.

    A stream can stop anywhere inside ``[[1, 2]]`` or ``[1](https://...)``; text that can still become
    a marker is held back until the next piece says what it is. A complete ``[1]`` at the end may
    still gain a link, so it is held too.
    """
    window = len(text) - MAX_MARKER_CHARS
    for start in range(max(window, 0), len(text)):
        if text[start] in _OPENERS and may_grow(text[start:]):
            return start
    return None


def may_grow(text: str) -> bool:
    """Whether all of ``text`` is the beginning of a marker (complete or not) that more text may extend."""
    return len(text) <= MAX_MARKER_CHARS and _PARTIAL.fullmatch(text, partial=True) is not None


def _code_spans(text: str) -> list[tuple[int, int]]:
    """Inline code (`...`) spans; a backtick with no partner on its line is plain text."""
    spans: list[tuple[int, int]] = []
    for match in re.finditer(r"(?<!`)(`+)(?!`)[^\n]*?(?<!`)\1(?!`)", text):  # runs of equal length
        spans.append((match.start(), match.end()))
    return spans


def remove_markers(text: str, markers: list[Marker]) -> str:
    """``text`` without the markers, and without the space each one leaned on."""
    out: list[str] = []
    last = 0
    for marker in markers:
        before = text[last : marker.start]
        after = text[marker.end : marker.end + 1]
        if not "".join(out) and not before.strip():
            before = ""  # "[1] Paris ...": a marker that opens the text takes its space with it
            last = marker.end + (1 if after in (" ", "\t") else 0)
            out.append(before)
            continue
        if before.endswith((" ", "\t")):
            # "France [1]." -> "France."; "France [1] Berlin" -> "France Berlin" (one space kept)
            before = before.rstrip(" \t") + (" " if after.isalnum() else "")
        else:
            last_char = before[-1:] or next((o[-1] for o in reversed(out) if o), "")
            if last_char.isascii() and last_char.isalnum() and after.isascii() and after.isalnum():
                before += " "  # "France[1]Paris": the marker was all that kept two words apart
        out.append(before)
        last = marker.end
    out.append(text[last:])
    return "".join(out)

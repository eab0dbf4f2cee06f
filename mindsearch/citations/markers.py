"""Stage 2 of citations: find citation markers in every style real models write.

``[1]``, ``[1, 2]``, ``[1，2]``, ``[1-3]``, ``[^1]``, ``[1][2]``, InternLM's ``[[1]]``, ``【1】``,
``【1†source】``, ``［1］``, ``[citation:1]``, ``[Source 2]`` and ``[1](https://...)`` are all one
thing: a claim that the text before them comes from sources 1, 2, 3. Numbers have at most three
digits, so ``[1990]`` and ``[2010-2014]`` stay text; a range is expanded only when it is short.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import regex

MAX_RANGE = 20  # "[1-3]" is three citations; "[1-300]" is not a citation at all

_NUMBER = r"\^?\s*\d{1,3}"
_SEPARATOR = r"\s*(?:[,，、;；]|\band\b|&|[-–—~～])\s*"
_LIST = rf"{_NUMBER}(?:{_SEPARATOR}{_NUMBER})*"
_PREFIX = r"(?:(?:citations?|cite|sources?|refs?|references?|来源|引用|参考)\s*[:：#]?\s*)?"
# "[1](https://...)": the URL is the model's, dropped; one level of parentheses inside ("Jaws_(film)")
_LINK = r"(?:\((?:https?://|\#)(?:[^\s()]|\([^\s()]{0,100}\)){0,300}\))?"
MARKER = re.compile(
    rf"""
    \[\[\s*(?P<double>{_LIST})\s*\]\]{_LINK}                 # [[1]], [[1, 2]] (InternLM)
    | \[\s*{_PREFIX}(?P<square>{_LIST})\s*\]{_LINK}          # [1], [1, 2], [1-3], [^1], [citation:1]
    | 【\s*{_PREFIX}(?P<lenticular>{_LIST})\s*(?:†[^】\n]{{0,40}})?】   # 【1】, 【1†source】
    | ［\s*(?P<fullwidth>{_LIST})\s*］                       # ［1］
    """,
    re.VERBOSE | re.IGNORECASE,
)
# What may stand between markers that cite together: "[1], [2]", "[1] and [2]", "[1]、[2]".
JOINER = r"[ \t]*(?:[,，、;；&]|\band\b|和|及|与)?[ \t]*"
# Markers that cite together, as one: what the segmenter and the checks treat as a unit.
_ANONYMOUS = re.sub(r"\(\?P<\w+>", "(?:", MARKER.pattern)
CLUSTER = re.compile(rf"(?:{_ANONYMOUS})(?:{JOINER}(?:{_ANONYMOUS}))*", re.VERBOSE | re.IGNORECASE)
# Words that only introduce markers: "according to [1]", "(Source: [1])", "Sources: [1], [2]", "据[1]".
_LEAD = re.compile(
    r"""(?:
        according[ \t]+to
        | as[ \t]+(?:stated|noted|reported|shown|described|mentioned|explained)[ \t]+(?:in|by)
        | see(?:[ \t]+also)? | cf\.? | per
        | (?:sources?|references?|citations?|refs?)[ \t]*[:：]
        | 据 | 根据 | 参见 | 见 | (?:来源|参考资料|参考文献|出处|引用)[ \t]*[:：]?
    )[ \t]*\Z""",
    re.VERBOSE | re.IGNORECASE,
)
_LINE_START = re.compile(r"(?:\A|\n)[ \t]*(?:(?:[-*+•>]|\d{1,3}[.)]|#{1,6})[ \t]+)?\Z")
_OPENERS = "[【［"
_PARTIAL = regex.compile(CLUSTER.pattern, regex.VERBOSE | regex.IGNORECASE)
MAX_MARKER_CHARS = 360


@dataclass(frozen=True)
class Marker:
    """Markers that cite together (``[1], [2]``; ``(Source: [1])``; ``According to [1],``): where
    they stand in the text, what they say, and the source numbers they name."""

    start: int
    end: int
    text: str
    numbers: tuple[int, ...]
    opens: bool = False  # "According to [1], the film...": removing it starts the sentence anew
    prefix: str = ""  # words that introduce the markers ("According to ", "(Source: "), as written
    suffix: str = ""  # what closes them (", ", ")"), as written

    @property
    def inline(self) -> bool:
        """Markers used as words ("According to [1], ..."): they stay where they are."""
        return bool(self.prefix.strip(" \t(（,，"))


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
    """Every group of markers in ``text``, in order (text inside backticks is code and holds none).

    Markers joined by a comma, "and" or 、 are one group, and so are the words that only introduce
    them ("according to", "Source:", "据") and parentheses that hold nothing else: all of it is
    citation, none of it is prose.
    """
    code = _code_spans(text)
    single: list[Marker] = []
    for match in MARKER.finditer(text):
        if any(start <= match.start() < end for start, end in code):
            continue
        body = next(group for group in match.groups() if group is not None)
        numbers = numbers_in(body)
        if numbers is not None:
            single.append(Marker(match.start(), match.end(), match.group(0), numbers))
    groups: list[list[Marker]] = []
    for marker in single:
        if groups and re.fullmatch(JOINER, text[groups[-1][-1].end : marker.start], re.IGNORECASE):
            groups[-1].append(marker)
        else:
            groups.append([marker])
    return [_widen(text, group) for group in groups]


def _widen(text: str, group: list[Marker]) -> Marker:
    """One group, widened over the words, commas and parentheses that only serve it."""
    start, end = group[0].start, group[-1].end
    numbers = tuple(dict.fromkeys(n for marker in group for n in marker.numbers))
    lead = _LEAD.search(text, max(0, start - 40), start)
    opens = False
    if lead is not None and (lead.start() == 0 or not text[lead.start() - 1].isalnum()):
        start = lead.start()
        before = text[:start]
        after = re.match(r"[ \t]*[,，][ \t]*", text[end:])
        if _LINE_START.search(before):
            if after is not None:  # "According to [1], Jaws was...": the sentence starts after it
                end += after.end()
                opens = True
        else:
            comma = re.search(r"[,，][ \t]*\Z", before)
            if comma is not None:  # "..., according to [1]."
                start = comma.start()
    around = re.search(r"[(（][ \t]*\Z", text[:start])
    close = re.match(r"[ \t]*[)）]", text[end:])
    if around is not None and close is not None:  # "(Source: [1])", "([1], [2])"
        start, end = around.start(), end + close.end()
    prefix, suffix = text[start : group[0].start], text[group[-1].end : end]
    return Marker(start, end, text[start:end], numbers, opens, prefix, suffix)


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
    return replace_markers(text, markers, lambda marker: None)


def replace_markers(text: str, markers: list[Marker], shown: Callable[[Marker], str | None]) -> str:
    """``text`` with each marker replaced by ``shown(marker)``, or removed where that is None, taking
    the space it leaned on with it."""
    out: list[str] = []
    last = 0
    capitalise = False
    for marker in markers:
        before = text[last : marker.start]
        replacement = shown(marker)
        if replacement is not None:
            out.append(before + replacement)
            last = marker.end
            continue
        after = text[marker.end : marker.end + 1]
        if not "".join(out) and not before.strip():
            # "[1] Paris ...": a marker that opens the text takes its space with it
            out.append("")
            last = marker.end + (1 if after in (" ", "\t") else 0)
            capitalise = capitalise or marker.opens
            continue
        if marker.opens and before.endswith("\n"):
            capitalise = True
        if before.endswith((" ", "\t")):
            # "France [1]." -> "France."; "France [1] Berlin" -> "France Berlin" (one space kept)
            before = before.rstrip(" \t") + (" " if after.isalnum() else "")
        else:
            last_char = before[-1:] or next((o[-1] for o in reversed(out) if o), "")
            if last_char.isascii() and last_char.isalnum() and after.isascii() and after.isalnum():
                before += " "  # "France[1]Paris": the marker was all that kept two words apart
        out.append(before)
        last = marker.end
    rest = text[last:]
    if capitalise and rest[:1].islower():  # "According to [1], the film..." -> "The film..."
        rest = rest[0].upper() + rest[1:]
    out.append(rest)
    return "".join(out)

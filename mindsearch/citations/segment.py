"""Stage 1 of citations: cut model text into sentences, lines of a table, code blocks and blank lines.

A citation belongs to the sentence it closes, wherever the model put it: ``France [1].``,
``France.[1]``, ``France. [1] Berlin...`` and ``法国的首都。[1]柏林...`` all cite ``[1]`` for the sentence
about France. So a sentence ends after its terminal punctuation, any closing quotes, and any markers
and spaces that follow; what comes next decides whether the full stop ended anything at all
("3.5", "e.g. this", "Dr. Smith", "Thomas V. Reber", "No. 5" do not; "World War I. It",
"vitamin C. It", "the answer is no. The" do).

``segment`` is prefix-stable: a segment it returns for a prefix of a text is a segment of the whole
text too. When the next characters are needed to decide, it stops and waits for them, so a stream
cut into any pieces gives the same segments. Code blocks and inline code are never looked into.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .markers import CLUSTER, may_grow

SegmentKind = Literal["sentence", "table", "code", "blank"]
MAX_SEGMENT_CHARS = 1500  # a "sentence" longer than this is cut at a space, so a stream keeps flowing

_CANDIDATE = re.compile(r"[.!?。！？…\n`]")
_TERMINAL = ".!?。！？…"
_CJK_TERMINAL = "。！？"
_CLOSERS = "\"'”’)]）」』》*_"
# At the start of a line: list bullets, ordered-list numbers, quotes, headings, task boxes.
LEAD = re.compile(r"[ \t]*(?:(?:[-*+•]|\d{1,3}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?|>[ \t]?|#{1,6}[ \t]+){0,3}")
_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")

# A full stop after these does not end a sentence ("Dr. Smith", "e.g. Paris", "Jan. 5").
_NEVER_ENDS = frozenset(
    """mr mrs ms messrs mme mlle dr prof st gen col capt lt sgt rev hon gov sen rep pres mt ft
    e.g i.e cf vs approx ca fig figs vol eq eqs ed eds dept est viz op
    jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)
# ... and before a number these do not either ("No. 5", "p. 12", "Vol. 3").
_BEFORE_NUMBERS = frozenset("no nos vol p pp ch art fig sec op".split())
# Words that start sentences: after an initial, they show that the full stop ended one ("War I. It").
STARTERS = frozenset(
    """The A An It Its He She His Her They Their There This That These Those In On At As By For From
    With But And Or So However Also After Before When While Although Because Since If Then Thus
    Therefore Moreover Furthermore Meanwhile Later Today I We You Our My One Some Many Most Both Each
    Other According During Yes No Not Neither None Who What Where Which Why How Is Are Was Were""".split()
)
# Lowercase words after which capital initials start a name ("by J. R. R. Tolkien", "the U.S. Army").
_NAME_LEADS = frozenset("by and of with to from for the in at on as named".split())


@dataclass(frozen=True)
class Segment:
    """A piece of model text, markers included, with the whitespace that follows it."""

    text: str
    kind: SegmentKind
    line_start: bool  # begins a line, so a list bullet or heading may lead it


def segment(
    text: str, *, final: bool, line_start: bool = True, max_chars: int = MAX_SEGMENT_CHARS
) -> tuple[list[Segment], int]:
    """The complete segments at the start of ``text`` and how many characters they take.

    With ``final`` the text is all there is; without it, a segment whose end depends on text not yet
    seen is left for later.
    """
    out: list[Segment] = []
    pos = 0
    at_line_start = line_start
    while pos < len(text):
        found = _next(text, pos, at_line_start, final, max_chars)
        if found is None:
            break
        end, kind = found
        out.append(Segment(text[pos:end], kind, at_line_start))
        at_line_start = text[end - 1] == "\n"
        pos = end
    return out, pos


def sentences(text: str) -> list[str]:
    """The sentences (and lines) of a finished text, stripped."""
    segments, _ = segment(text, final=True)
    return [s.text.strip() for s in segments if s.kind in ("sentence", "table") and s.text.strip()]


def _next(
    text: str, pos: int, line_start: bool, final: bool, max_chars: int
) -> tuple[int, SegmentKind] | None:
    if line_start:
        block = _line_block(text, pos, final)
        if block is not False:
            return None if block is True else block
        lead = LEAD.match(text, pos)
        start = lead.end() if lead else pos
        if start == len(text) and not final:
            return None  # "1" or "- " at the end: the lead may not be complete
    else:
        start = pos
    limit = pos + max_chars
    i = start
    while True:
        match = _CANDIDATE.search(text, i)
        if match is None or match.start() >= limit:
            if len(text) >= limit:
                return _cut(text, pos, limit), "sentence"
            return (len(text), "sentence") if final and len(text) > pos else None
        c = match.start()
        char = text[c]
        if char == "\n":
            return c + 1, "sentence"
        if char == "`":
            after = _skip_code(text, c, final)
            if after is None:
                return None
            i = after
            continue
        decided = _sentence_end(text, pos, c, final)
        if decided is None:
            return None
        end, next_i = decided
        if end is not None:
            return end, "sentence"
        i = next_i


def _line_block(text: str, pos: int, final: bool) -> tuple[int, SegmentKind] | bool | None:
    """A blank line, a fenced code block or a table row starting at ``pos``; False when it is none,
    None when the text seen so far cannot tell."""
    line_end = text.find("\n", pos)
    line = text[pos:] if line_end < 0 else text[pos:line_end]
    if not line.strip(" \t"):
        if line_end >= 0:
            return line_end + 1, "blank"
        return (len(text), "blank") if final else None
    stripped = line.lstrip(" \t")
    fence = _FENCE.match(line)
    if fence:
        marker = fence.group(1)
        closing = re.compile(rf"\n[ \t]{{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*(?:\n|\Z)")
        close = closing.search(text, pos + len(line))
        if close is None or (not close.group(0).endswith("\n") and not final):
            return (len(text), "code") if final else None
        return close.end(), "code"
    if line_end < 0 and not final and stripped and set(stripped) <= set("`~"):
        return None  # "``" may become a fence
    if stripped.startswith("|"):
        if line_end >= 0:
            return line_end + 1, "table"
        return (len(text), "table") if final else None
    return False


def _skip_code(text: str, c: int, final: bool) -> int | None:
    """Where scanning goes on after a backtick at ``c``: past its inline code, or past the backtick."""
    run = len(text[c:]) - len(text[c:].lstrip("`"))
    closing = re.compile(rf"(?<!`)`{{{run}}}(?!`)")
    line_end = text.find("\n", c)
    stop = len(text) if line_end < 0 else line_end
    close = closing.search(text, c + run, stop)
    if close is not None:
        if close.end() == len(text) and not final:
            return None  # "``a``" at the very end may be "``a```..."
        return close.end()
    if line_end < 0 and not final:
        return None  # the code span may still close on this line
    return c + run


def _sentence_end(text: str, pos: int, c: int, final: bool) -> tuple[int | None, int] | None:
    """Whether the terminal punctuation at ``c`` ends the sentence begun at ``pos``.

    Returns (end of the segment or None, where to go on scanning), or None when the text seen so far
    cannot tell.
    """
    j = c
    while j < len(text) and text[j] in _TERMINAL:
        j += 1
    punct = text[c:j]
    cjk = any(p in _CJK_TERMINAL for p in punct)
    if j == len(text) and not final:
        return None
    if j < len(text) and not cjk and text[j].isalnum() and not _CJK.match(text[j]):
        return None, j  # "3.5", "U.S", "example.com", "Yahoo!Inc"
    k = j
    while k < len(text) and text[k] in _CLOSERS:
        k += 1
    m, spaced, marked = k, False, False
    while m < len(text):
        if text[m] in " \t":
            m, spaced = m + 1, True
            continue
        if not final and text[m] in "[【［" and may_grow(text[m:]):
            return None  # "France. [1" or "France. [1](htt" may be a marker that belongs here
        marker = CLUSTER.match(text, m)
        if marker is None:
            break
        m, marked = marker.end(), True
    if m == len(text):
        return (m, m) if final else None
    nxt = text[m]
    if nxt == "\n":
        return m + 1, m + 1
    if cjk or _CJK.match(nxt):
        return m, m
    if not spaced and not marked:
        return None, j  # '."x': not the end of anything we can tell
    if nxt.islower():
        return None, j  # "e.g. this", "approx. three": sentences do not start in lower case
    if "." not in punct and "…" not in punct:
        return m, m  # "!" or "?" followed by a new sentence
    previous = _words_before(text, pos, c)
    if nxt.isdigit():
        return (None, j) if previous[-1:] and previous[-1].lower() in _BEFORE_NUMBERS else (m, m)
    if not nxt.isalpha():
        return m, m  # a quote, a bracket, "**": a new sentence
    word = re.match(r"[^\W\d_]+", text[m:])
    assert word is not None
    if word.end() + m == len(text) and not final:
        return None  # the next word is not complete yet
    return (m, m) if _ends(previous, word.group(0)) else (None, j)


def _words_before(text: str, pos: int, c: int) -> list[str]:
    return [w.strip("(\"'“‘*_") for w in text[pos:c].split()[-2:]]


def _ends(previous: list[str], following: str) -> bool:
    """Whether a full stop after ``previous`` words, followed by the capitalised ``following``, ends a
    sentence."""
    if not previous:
        return True
    last = previous[-1]
    lowered = last.lower().rstrip(".")
    if lowered in _NEVER_ENDS:
        return False
    if re.fullmatch(r"[A-Z]|(?:[A-Z]\.)+[A-Z]", last):  # an initial ("V."), or "U.S."
        if following in STARTERS:
            return True
        before = previous[0] if len(previous) == 2 else ""
        # "vitamin C." is the end of a sentence; "by J." and "Thomas V." begin a name
        return bool(before) and before[:1].islower() and before.lower() not in _NAME_LEADS
    return True


def _cut(text: str, pos: int, limit: int) -> int:
    """Where an over-long sentence is cut: the last space before the limit, else the limit."""
    space = text.rfind(" ", pos + (limit - pos) // 2, limit)
    return space + 1 if space >= 0 else limit

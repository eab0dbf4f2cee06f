"""Citations as stages, over streamed model text: segment, parse markers, check, attach, renumber.

``CitationStream`` holds text back until a segment (a sentence, a table row, a code block) is
complete, then checks it as a whole and emits it. Because segmentation is prefix-stable, any chunking
of the same stream gives the same output. For each sentence:

1. markers in any style (``[[1]]``, ``【1】``, ``[1-3]``...) are found, wherever they stand: before or
   after the full stop, with or without a space;
2. each group of markers is checked against the claim it closes (the words since the previous group,
   or the whole sentence when that is too short to judge): a number that names no source is dropped
   as "dangling", a source that does not support the claim as "unsupported";
3. a factual sentence left without a citation gets the one source that supports it best, when it
   does so well enough; questions, headings, table cells and "the sources do not say" get none;
4. the surviving sources are numbered by the ``Registry`` in order of first use and written once,
   before the sentence's final punctuation: ``France [1].``, ``法国的首都 [1]。``.

Everything else (line breaks, list bullets, tables, code) passes through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .markers import Marker, find_markers, partial_marker_start, remove_markers, replace_markers
from .segment import LEAD, Segment, segment
from .sources import Registry, Source
from .support import Claim, anchored, anchors, covered, is_non_answer, supports

_TAIL = re.compile(r"(?:[.!?。！？…]+|[:：;；])[\"'”’)\]）」』》*_]*\Z")
_TABLE_RULE = re.compile(r"[\s|:\-]+")
SHORT_CLAIM = 3  # a claim with fewer content words than this is judged with its whole sentence
BARE_ANSWER = 4  # a first sentence with fewer content words than this is judged with the question
ANCHORS_TO_ATTACH = 2  # numbers and Latin names a translated sentence needs to be given a source


@dataclass
class Dropped:
    """A citation the model wrote that was removed, and why."""

    marker: str
    reason: str


class CitationStream:
    """Turns streamed model text into text whose citations are checked and renumbered.

    ``sources`` maps the numbers the model was shown to sources; ``registry`` gives the numbers the
    reader sees. ``question`` is what the text answers: a bare answer ("1975 [1].") is checked as
    an answer to it. Feed pieces with ``feed`` and emit what it returns; call ``finish`` at the end.
    """

    def __init__(
        self,
        sources: dict[int, Source],
        registry: Registry,
        *,
        min_support: float,
        attach_support: float,
        on_drop: Callable[[Dropped], None] | None = None,
        question: str = "",
    ) -> None:
        self.sources = sources
        self.registry = registry
        self.min_support = min_support
        self.attach_support = attach_support
        self.on_drop = on_drop
        self.question = question
        self.dropped: list[Dropped] = []
        self.text = ""  # everything emitted so far
        self._buffer = ""
        self._sentences = 0

    # -- streaming ---------------------------------------------------------------------------------
    def feed(self, piece: str) -> str:
        self._buffer += piece
        return self._drain(final=False)

    def finish(self) -> str:
        # a marker the stream stopped inside ("Ohio [[", "France [1") is no citation and no text
        start = partial_marker_start(self._buffer)
        if start is not None and not find_markers(self._buffer[start:]):
            self._buffer = self._buffer[:start].rstrip(" \t")
        return self._drain(final=True)

    @property
    def pending(self) -> str:
        """Text received but not yet emitted (held until its sentence is complete)."""
        return self._buffer

    def _drain(self, *, final: bool) -> str:
        line_start = not self.text or self.text.endswith("\n")
        segments, used = segment(self._buffer, final=final, line_start=line_start)
        self._buffer = self._buffer[used:]
        out = "".join(self._render(s) for s in segments)
        self.text += out
        return out

    def _render(self, seg: Segment) -> str:
        if seg.kind in ("code", "blank"):
            return seg.text
        if seg.kind == "table":
            return self._render_table(seg.text)
        lead = ""
        if seg.line_start:
            match = LEAD.match(seg.text)
            lead = match.group(0) if match else ""
        body = seg.text[len(lead) :]
        if seg.line_start and self._reference_line(body):
            return ""  # the model's own reference list: the reader gets ours, checked
        heading = lead.strip().startswith("#")
        return lead + self._sentence(body, attach=not heading)

    def _reference_line(self, line: str) -> bool:
        """``[^1]: Jaws (film)``, ``[1]: https://...``, ``[1] Jaws (film) - https://...``: a line that
        only says what a marker's source is. (``[1] Jaws (film)`` alone may be a sentence: it stays.)"""
        markers = find_markers(line)
        if not markers or markers[0].start != 0:
            return False
        rest = line[markers[0].end :].strip()
        if re.match(r"[:：]", rest):
            return True
        rest = rest.lstrip("-–—:.： \t*_").strip()
        if not rest or "`" in rest or find_markers(rest):
            return False
        # "[1] Jaws (film) - https://...", "[1] <https://...>"
        return re.search(r"(?:\A|\s|[(<])https?://[^\s()<>]+[)>]?\Z", rest) is not None

    def _render_table(self, line: str) -> str:
        """A table row: each cell's markers are checked; cells are too short to get new ones."""
        if _TABLE_RULE.fullmatch(line.strip()) or not find_markers(line):
            return line
        cells = re.split(r"(?<!\\)\|", line)
        inner = [self._sentence(cell, attach=False) for cell in cells[1:-1]]
        return "|".join([cells[0], *inner, cells[-1]])

    # -- one sentence ------------------------------------------------------------------------------
    def _sentence(self, raw: str, *, attach: bool) -> str:
        core = raw.rstrip()
        gap = raw[len(core) :]
        markers = find_markers(core)
        end = len(core)
        trailing: list[Marker] = []
        for marker in reversed(markers):  # markers after the final punctuation
            if core[marker.end : end].strip():
                break
            trailing.insert(0, marker)
            end = marker.start
        text = core[:end].rstrip()
        tail_match = _TAIL.search(text)
        tail = tail_match.group(0) if tail_match else ""
        content = text[: len(text) - len(tail)]
        inner = [m for m in markers if m.end <= len(content)]
        clean = remove_markers(content, inner).rstrip()
        self._sentences += 1
        in_place, at_end = self._check(
            content, inner, trailing, clean, attach=attach and not tail.startswith(("?", "？"))
        )

        def shown(marker: Marker) -> str | None:
            numbers = in_place.get(marker.start)
            if not numbers:
                return None
            return marker.prefix + "".join(f"[{n}]" for n in numbers) + marker.suffix

        body = replace_markers(content, inner, shown).rstrip()
        cite = " " + "".join(f"[{n}]" for n in at_end) if at_end else ""
        if not body and not tail:
            return gap if not cite else cite.strip() + gap
        return body + cite + tail + gap

    def _check(
        self, content: str, inner: list[Marker], trailing: list[Marker], clean: str, *, attach: bool
    ) -> tuple[dict[int, list[int]], list[int]]:
        """The reader's numbers for the sources that support this sentence: for markers used as words,
        by where they start (they stay there); for the rest, sorted, to stand at the sentence's end."""
        whole = Claim.of(clean, self._context(clean))
        non_answer = is_non_answer(clean)
        in_place: dict[int, list[int]] = {}
        at_end: list[Source] = []
        for claim_text, marker in self._groups(content, inner, trailing):
            claim = whole if claim_text is None else Claim.of(claim_text)
            if claim.size < SHORT_CLAIM:
                claim = whole
            candidates: list[tuple[str, Source]] = []
            for number in marker.numbers:
                label = f"[{number}]"
                source = self.sources.get(number)
                if source is None:
                    self._drop(label, "dangling")
                elif non_answer or not clean or not supports(claim, source.evidence, self.min_support):
                    self._drop(label, "unsupported")
                elif all(source is not other for _, other in candidates):
                    candidates.append((label, source))
            if candidates and not covered(claim, [s.evidence for _, s in candidates]):
                for label, _ in candidates:
                    self._drop(label, "unsupported")
                candidates = []
            if marker.inline and marker in inner:
                numbers = [self.registry.number(s) for _, s in candidates]
                in_place[marker.start] = list(dict.fromkeys(numbers))
            else:
                at_end += [s for _, s in candidates if all(s is not k for k in at_end)]
        kept_any = at_end or any(in_place.values())
        if not kept_any and attach and clean and not non_answer and not clean.endswith((":", "：")):
            best = self._best(whole)
            if best is not None:
                at_end.append(best)
        return in_place, sorted({self.registry.number(source) for source in at_end})

    def _context(self, clean: str) -> str:
        """The question, for a first sentence too bare to be judged alone ("1975.", "The United States.").

        A sentence that repeats the question's predicate ("The Exies were formed in 1997") is a claim
        of its own and is judged alone.
        """
        if not self.question or self._sentences != 1:
            return ""
        claim = Claim.of(clean)
        if claim.size >= BARE_ANSWER or (claim.stems - claim.names) & Claim.of(self.question).stems:
            return ""
        return self.question

    def _groups(
        self, content: str, inner: list[Marker], trailing: list[Marker]
    ) -> list[tuple[str | None, Marker]]:
        """Each group of markers with the claim it closes (None: the whole sentence).

        A group inside the sentence closes the words since the previous one; the group at its end
        (and after its full stop) closes the sentence, or the words since the previous group. Markers
        used as words ("According to [1], ...") vouch for the whole sentence.
        """
        groups: list[tuple[str | None, Marker]] = []
        claim_start = 0
        for marker in inner:
            rest = strip_markers(content[marker.end :]).strip()
            if marker.inline:
                groups.append((None, marker))
            elif rest:  # text follows inside the sentence: the group closes a clause
                groups.append((strip_markers(content[claim_start : marker.start]), marker))
                claim_start = marker.end
            else:  # the group ends the sentence's text
                groups.append((None if claim_start == 0 else strip_markers(content[claim_start:]), marker))
        for marker in trailing:
            groups.append((None if claim_start == 0 else strip_markers(content[claim_start:]), marker))
        return groups

    def _best(self, claim: Claim) -> Source | None:
        """The source that supports an uncited sentence best, if it does so well enough."""
        if not claim.stems:
            return None
        # a short sentence ("The Exies.") must be found whole; a longer one well enough
        needed = self.attach_support if claim.size >= SHORT_CLAIM else 1.0
        best: Source | None = None
        best_score = 0.0
        for source in self.sources.values():
            evidence = source.evidence
            if evidence.language != claim.language:
                # a translation is attached only on two anchors or more (numbers, Latin names), all found
                if anchors(claim) >= ANCHORS_TO_ATTACH and anchored(claim, [evidence]):
                    score = 0.5 + anchors(claim) / 100  # below any same-language source found whole
                    if score > best_score:
                        best, best_score = source, score
                continue
            if not supports(claim, evidence, needed) or not covered(claim, [evidence]):
                continue
            score = max((len(claim.stems & p) / len(claim.stems) for p in evidence.passages), default=0.0)
            if score > best_score:
                best, best_score = source, score
        return best

    def _drop(self, marker: str, reason: str) -> None:
        dropped = Dropped(marker, reason)
        self.dropped.append(dropped)
        if self.on_drop is not None:
            self.on_drop(dropped)


def renumber(text: str, mapping: dict[int, int]) -> str:
    """Rewrite markers (any style) as ``[n]`` through ``mapping``; numbers not in it are removed.

    Words that introduce markers ("According to [1], ...") stay with them.
    """

    def shown(marker: Marker) -> str | None:
        numbers = list(dict.fromkeys(mapping[n] for n in marker.numbers if n in mapping))
        if not numbers:
            return None
        cited = "".join(f"[{n}]" for n in numbers)
        return marker.prefix + cited + marker.suffix if marker.inline else cited

    return replace_markers(text, find_markers(text), shown)


def strip_markers(text: str) -> str:
    """The text without its citation markers (for prompts, comparisons and short answers)."""
    return remove_markers(text, find_markers(text))

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

from .markers import Marker, find_markers, remove_markers
from .segment import LEAD, Segment, segment
from .sources import Registry, Source
from .support import Claim, covered, is_non_answer, supports

_TAIL = re.compile(r"(?:[.!?。！？…]+|[:：;；])[\"'”’)\]）」』》*_]*\Z")
_TABLE_RULE = re.compile(r"[\s|:\-]+")
SHORT_CLAIM = 3  # a claim with fewer content words than this is judged with its whole sentence
BARE_ANSWER = 4  # a first sentence with fewer content words than this is judged with the question


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
        heading = lead.strip().startswith("#")
        return lead + self._sentence(body, attach=not heading)

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
        kept = self._check(
            content, inner, trailing, clean, attach=attach and not tail.startswith(("?", "？"))
        )
        cite = " " + "".join(f"[{n}]" for n in kept) if kept else ""
        if not clean and not tail:
            return gap if not cite else cite.strip() + gap
        return clean + cite + tail + gap

    def _check(
        self, content: str, inner: list[Marker], trailing: list[Marker], clean: str, *, attach: bool
    ) -> list[int]:
        """The reader's numbers for the sources that support this sentence, sorted."""
        whole = Claim.of(clean, self._context(clean))
        non_answer = is_non_answer(clean)
        kept: list[Source] = []
        for claim_text, group in self._groups(content, inner, trailing):
            claim = whole if claim_text is None else Claim.of(claim_text)
            if claim.size < SHORT_CLAIM:
                claim = whole
            candidates: list[tuple[str, Source]] = []
            for marker in group:
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
            kept += [s for _, s in candidates if all(s is not k for k in kept)]
        if not kept and attach and clean and not non_answer and not clean.endswith((":", "：")):
            best = self._best(whole)
            if best is not None:
                kept.append(best)
        return sorted({self.registry.number(source) for source in kept})

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
    ) -> list[tuple[str | None, list[Marker]]]:
        """Markers in runs that stand together, each with the claim it closes (None: the sentence)."""
        groups: list[tuple[str | None, list[Marker]]] = []
        run: list[Marker] = []
        claim_start = 0
        for marker in inner:
            if run and content[run[-1].end : marker.start].strip():
                groups.append((self._claim(content, claim_start, run), run))
                claim_start, run = run[-1].end, []
            run.append(marker)
        if run:
            rest = remove_markers(content[run[-1].end :], find_markers(content[run[-1].end :]))
            if rest.strip():  # text follows the run inside the sentence: the run closes a clause
                groups.append((self._claim(content, claim_start, run), run))
                claim_start, run = run[-1].end, []
        closing = run + trailing
        if closing:
            groups.append((None if claim_start == 0 else strip_markers(content[claim_start:]), closing))
        return groups

    @staticmethod
    def _claim(content: str, start: int, run: list[Marker]) -> str:
        return strip_markers(content[start : run[0].start])

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
    """Rewrite markers (any style) as ``[n]`` through ``mapping``; numbers not in it are removed."""
    out: list[str] = []
    last = 0
    for marker in find_markers(text):
        numbers = [mapping[n] for n in marker.numbers if n in mapping]
        before = text[last : marker.start]
        if not numbers:
            before = before.rstrip(" \t")
        out.append(before + "".join(f"[{n}]" for n in dict.fromkeys(numbers)))
        last = marker.end
    out.append(text[last:])
    return "".join(out)


def strip_markers(text: str) -> str:
    """The text without its citation markers (for prompts, comparisons and short answers)."""
    return remove_markers(text, find_markers(text))

"""Sources the model was shown, and the one numbering the reader sees (stage 5: renumber)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..events import Reference
from .support import Evidence


@dataclass(eq=False)
class Source:
    """A page or document that passages came from; ``key`` is its normalised URL or path."""

    key: str
    title: str
    url: str
    passages: list[str] = field(default_factory=list)
    _evidence: tuple[int, Evidence] | None = field(default=None, repr=False)

    @property
    def evidence(self) -> Evidence:
        """What the passages hold, prepared once (again only if passages were added since)."""
        if self._evidence is None or self._evidence[0] != len(self.passages):
            self._evidence = (len(self.passages), Evidence.of(self.passages))
        return self._evidence[1]

    @property
    def language(self) -> str:
        return self.evidence.language


class Registry:
    """Gives each source one number, in order of first use, so the reader sees 1..N with no gaps."""

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


def reference_list(references: list[Reference]) -> str:
    return "\n".join(f"[{ref.n}] {ref.title} - {ref.url}" for ref in references)

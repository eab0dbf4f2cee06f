"""Citations: every marker a model writes is checked against what its source says, then renumbered.

The work is done in stages, one module each: ``segment`` (sentences, table rows, code), ``markers``
(every marker style real models write), ``support`` (does a source say what a claim says),
``stream`` (holding streamed text to the end of its sentence, checking, attaching, renumbering)
and ``sources`` (the sources and the one numbering the reader sees). docs/citations.md states the
rules with examples.
"""

from .markers import MARKER, Marker, find_markers
from .segment import sentences
from .sources import Registry, Source, reference_list
from .stream import CitationStream, Dropped, renumber, strip_markers

__all__ = [
    "MARKER",
    "CitationStream",
    "Dropped",
    "Marker",
    "Registry",
    "Source",
    "find_markers",
    "reference_list",
    "renumber",
    "sentences",
    "strip_markers",
]

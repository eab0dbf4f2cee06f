"""Small text tools shared by the passage ranker, the citation checker and the planner.

Words are lowercased ASCII/Latin word tokens; CJK text is split into character bigrams so Chinese
gets a usable overlap measure without a segmenter.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise
from typing import Literal

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    """a an and are as at be been but by can did do does for from had has have he her his how i if in
    into is it its of on or she that the their them then there these they this to was were what when
    where which who whom whose why will with would you your not no yes than also about after before
    so such other any all one two more most""".split()
)


def quoted(text: str) -> str:
    """Text from a page or a model, made safe to put between the prompts' <<< and >>> data markers."""
    return text.replace("<<<", "‹‹‹").replace(">>>", "›››")


def detect_language(text: str) -> Literal["en", "zh"]:
    """Chinese when a fifth or more of the letters are CJK characters, else English."""
    cjk = len(_CJK.findall(text))
    letters = sum(1 for char in text if char.isalpha())
    return "zh" if letters and cjk / letters >= 0.2 else "en"


def tokens(text: str) -> list[str]:
    """Content tokens: words without stop words, and CJK character bigrams."""
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if _CJK.search(word):
            chars = [c for c in word if _CJK.match(c)]
            if len(chars) == 1:
                out.append(chars[0])
            out.extend(a + b for a, b in pairwise(chars))
        elif word not in STOPWORDS:
            out.append(word)
    return out


def overlap(claim: str, evidence: str) -> float:
    """Share of the claim's distinct content tokens found in the evidence (0..1)."""
    claim_tokens = set(tokens(claim))
    if not claim_tokens:
        return 0.0
    evidence_tokens = set(tokens(evidence))
    return len(claim_tokens & evidence_tokens) / len(claim_tokens)


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of content tokens; used to spot a plan that only echoes the question."""
    ta, tb = set(tokens(a)), set(tokens(b))
    if not ta or not tb:
        return 1.0 if a.strip().lower() == b.strip().lower() else 0.0
    return len(ta & tb) / len(ta | tb)


_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])|\n+")


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def chunk(text: str, size: int) -> list[str]:
    """Split text into passages of about ``size`` characters along sentence boundaries."""
    passages: list[str] = []
    current = ""
    for paragraph in re.split(r"\n\s*\n", text):
        for sentence in split_sentences(paragraph):
            if len(sentence) > size:
                for start in range(0, len(sentence), size):
                    piece = sentence[start : start + size]
                    if current:
                        passages.append(current)
                        current = ""
                    passages.append(piece)
                continue
            if current and len(current) + len(sentence) + 1 > size:
                passages.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}".strip()
        if current and len(current) > size // 2:
            passages.append(current)
            current = ""
    if current:
        passages.append(current)
    return passages


class BM25:
    """Okapi BM25 over a handful of passages: ranks what the searcher read against the sub-question."""

    def __init__(self, documents: Iterable[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.docs = [Counter(tokens(doc)) for doc in documents]
        self.lengths = [sum(doc.values()) for doc in self.docs]
        self.avg = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        self.k1, self.b = k1, b
        df: Counter[str] = Counter()
        for doc in self.docs:
            df.update(doc.keys())
        n = len(self.docs)
        self.idf = {term: math.log(1 + (n - freq + 0.5) / (freq + 0.5)) for term, freq in df.items()}

    def scores(self, query: str) -> list[float]:
        terms = tokens(query)
        out = []
        for doc, length in zip(self.docs, self.lengths, strict=True):
            score = 0.0
            for term in terms:
                freq = doc.get(term, 0)
                if freq:
                    norm = freq + self.k1 * (1 - self.b + self.b * length / (self.avg or 1))
                    score += self.idf.get(term, 0.0) * freq * (self.k1 + 1) / norm
            out.append(score)
        return out

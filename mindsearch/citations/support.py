"""Stage 3 of citations: does a source say what a claim says?

Word overlap alone passes "Jaws was not directed by Spielberg" against a page saying he directed it,
and "Pizza Hut was founded in Detroit" against a Pizza Hut page that never names Detroit. So a claim
is supported by a group of sources only when:

- each source holds enough of the claim's words (``min_support``, the share of its content words,
  compared by a light stem so "directed" meets "direct");
- every number and capitalised name of the claim appears in one of the sources (for Chinese claims:
  numbers, Latin words and 《titles》);
- the sentence of the source that matches the claim best is negated exactly when the claim is
  ("not", "never", "no", "n't"...; 不, 没有, 未, 并非...), counting only negations near the claim's
  own words, so "which was not expected to succeed" does not flip a claim about who directed it.

A sentence that says the sources do not answer ("The passages do not say who directed Jaws.",
"资料中没有提到…") makes no claim and gets no citation. Word overlap cannot judge a translation, so a
claim in one language against a source in another is judged by what survives translation: its
numbers and, for a Chinese claim, its Latin names ("Pizza Hut 于 1958 年…" against an English page).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .._text import STOPWORDS, detect_language, tokens
from .segment import STARTERS, sentences

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"[A-Z][\w’'\-]*")
_TITLE = re.compile(r"《([^》]{1,40})》")
_LATIN = re.compile(r"[A-Za-z][A-Za-z\-']+")
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split(), start=0
    )
}
_DISCOURSE = frozenset(
    """additionally overall notably however moreover furthermore finally first second third
    firstly secondly lastly in-short briefly specifically similarly consequently instead also
    therefore thus meanwhile today currently recently historically originally""".split()
)
_EN_NEGATION = re.compile(
    r"\b(?:not|never|no|none|neither|nor|nobody|nothing|cannot|without)\b|n['’]t\b", re.IGNORECASE
)
# 不/没/未/无/非 as negations, not inside words that only look negative (不同, 未来, 非常, 无论...)
_ZH_NEGATION = re.compile(
    r"(?:并非|并不|从未|从不|绝非|没有|不是|未曾|"
    r"不(?![同久断仅过少但管论然如算料止足错])|没(?!落)|未(?![来知婚满成])|无(?![论线数限法比])|非(?![常洲法凡]))"
)
_EN_NON_ANSWER = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(?:passages?|sources?|documents?|context|results|texts?|articles?|pages?|snippets?|evidence|"
        r"materials?|references?|information(?: provided| available| given)?)\b[^.;]{0,60}?\b"
        r"(?:do|does|did|can|could|is|are|was|were)(?: not|n['’]t)\b",
        r"\b(?:no|not enough|insufficient|limited) (?:relevant |specific |further |additional )?"
        r"(?:information|data|details?|mention|evidence|answer)\b",
        r"\b(?:i|we) (?:could|can|was|were|did|do)(?: not|n['’]t)(?: able to)? "
        r"(?:find|determine|locate|confirm|verify|identify|answer)\b",
        r"\b(?:cannot|can['’]t|could not|couldn['’]t) be (?:determined|answered|found|confirmed|verified)\b",
        r"\b(?:is|are|was|were|remains?) (?:not (?:known|clear|mentioned|specified|stated|given|provided)|"
        r"unknown|unclear)\b",
        r"\bnot (?:mentioned|specified|stated|provided|found) in\b",
    )
]
_ZH_NON_ANSWER = re.compile(
    r"(?:未|没有|并未|没|并没有)(?:提及|提到|说明|给出|提供|找到|涉及|包含|记载|明确|指出)|"
    r"无法(?:确定|回答|找到|得知|判断|确认)|不(?:清楚|确定|明确)|信息不足|找不到|"
    r"(?:资料|来源|段落|文档|搜索结果|材料|信息|上下文)中?(?:并)?(?:没有|未|无)"
)


def stem(word: str) -> str:
    """A light English stem: enough for "directed"/"direct"/"directs", harmless elsewhere."""
    if not word.isascii() or len(word) <= 3:
        return word
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word.rstrip("e") if len(word) > 3 else word


def stems(text: str) -> set[str]:
    return {stem(t) for t in tokens(text)}


def _numbers(text: str) -> set[str]:
    found = {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}
    found |= {_NUMBER_WORDS[w] for w in _WORD.findall(text.lower()) if w in _NUMBER_WORDS}
    return found


@dataclass
class Evidence:
    """What a source's passages hold, prepared once per source for every claim checked against it."""

    passages: list[set[str]]
    words: set[str]  # stems of every word, stop words included ("No" in a name still counts)
    numbers: set[str]
    text: str
    sentences: list[tuple[str, set[str]]]
    language: str

    @classmethod
    def of(cls, passages: list[str]) -> Evidence:
        text = "\n".join(passages)
        parts = [(s, stems(s)) for p in passages for s in sentences(p)]
        words = {stem(w) for w in _WORD.findall(text.lower())}
        return cls(
            [stems(p) for p in passages],
            words,
            _numbers(text),
            text,
            parts,
            detect_language(text[:2000]),
        )


@dataclass(frozen=True)
class Claim:
    """A piece of text a citation vouches for, with what must be found for it."""

    text: str
    stems: frozenset[str]
    names: frozenset[str]  # stems of capitalised names (and Latin words, in Chinese)
    numbers: frozenset[str]
    titles: frozenset[str]  # 《titles》 in Chinese text
    language: str

    @classmethod
    def of(cls, text: str, context: str = "") -> Claim:
        """``context`` (the question, for a bare answer like "1975") adds its numbers, and its names
        unless the answer is one of them (a choice between things the question names)."""
        language = detect_language(text) if text.strip() else "en"
        names = _names(text, language)
        numbers = _numbers(text)
        titles = set(_TITLE.findall(text))
        if context:
            asked = _names(context, detect_language(context))
            numbers |= _numbers(context)
            titles |= set(_TITLE.findall(context))
            if not asked & names:  # "The Exies" for "The Exies or Circus Diablo?" names its own topic
                names |= asked
        return cls(
            text, frozenset(stems(text)), frozenset(names), frozenset(numbers), frozenset(titles), language
        )

    @property
    def size(self) -> int:
        return len(self.stems)


# "**Director:** Steven Spielberg ...": a list item's label is the writer's word, not the source's
_LABEL = re.compile(r"^[\s*_]*(?:[^\W\d_][\w’'\-]*[ \t]*){1,4}[:：][\s*_]*")


def _names(text: str, language: str) -> set[str]:
    if language == "zh":
        return {stem(w.lower()) for w in _LATIN.findall(text)}
    label = _LABEL.match(text)
    if label is not None and label.end() < len(text):
        text = text[label.end() :]
    words = re.findall(r"[\w’'\-]+", text)
    names: set[str] = set()
    for index, word in enumerate(words):
        if not _NAME.fullmatch(word) or word in STARTERS or word.lower() in STOPWORDS:
            continue
        if index == 0 and not (len(words) > 1 and _NAME.fullmatch(words[1]) and words[1] not in STARTERS):
            continue  # a capital that only starts the sentence says nothing ("Directed by ...")
        if word.lower() in _DISCOURSE:
            continue
        for part in re.split(r"[\-’']", word.lower()):
            if part and part != "s" and part not in STOPWORDS:
                names.add(stem(part))
    return names


def is_non_answer(sentence: str) -> bool:
    """Whether the sentence says the sources do not answer, rather than claiming something."""
    if detect_language(sentence) == "zh":
        return _ZH_NON_ANSWER.search(sentence) is not None
    return any(p.search(sentence) for p in _EN_NON_ANSWER)


def lexical(claim: Claim, evidence: Evidence) -> float:
    """Share of the claim's content stems found in the best single passage of the source."""
    if not claim.stems:
        return 0.0
    return max((len(claim.stems & p) / len(claim.stems) for p in evidence.passages), default=0.0)


def _negated(text: str, focus: frozenset[str] | set[str], language: str) -> bool:
    """Whether a negation in ``text`` bears on the claim's words (within four words after it)."""
    if language == "zh":
        return _ZH_NEGATION.search(text) is not None
    for match in _EN_NEGATION.finditer(text):
        window = _WORD.findall(text[match.end() :].lower())[:4]
        if any(stem(w) in focus for w in window):
            return True
    return False


def polarity_agrees(claim: Claim, evidence: Evidence) -> bool:
    """The source's sentence closest to the claim is negated exactly when the claim is."""
    if not evidence.sentences or not claim.stems:
        return True
    best, best_stems = max(evidence.sentences, key=lambda s: len(claim.stems & s[1]))
    if not claim.stems & best_stems:
        return True
    focus = claim.stems & best_stems
    language = claim.language
    return _negated(claim.text, focus, language) == _negated(best, focus, language)


def covered(claim: Claim, group: Iterable[Evidence]) -> bool:
    """Every number and name of the claim appears in at least one source of the group."""
    group = list(group)
    numbers = set().union(*(e.numbers for e in group)) if group else set()
    if not claim.numbers <= numbers:
        return False
    same_language = [e for e in group if e.language == claim.language]
    if not same_language:
        return anchored(claim, group)  # a translation: only numbers and Latin names compare
    words = set().union(*(e.words for e in same_language))
    if not claim.names <= words:
        return False
    text = "\n".join(e.text for e in same_language)
    return all(title in text for title in claim.titles)


def anchors(claim: Claim) -> int:
    """What survives translation: numbers, and for a Chinese claim its Latin names ("Pizza Hut")."""
    return len(claim.numbers) + (len(claim.names) if claim.language == "zh" else 0)


def anchored(claim: Claim, group: Iterable[Evidence]) -> bool:
    """A claim judged against sources in another language: its anchors all appear in them."""
    group = list(group)
    numbers = set().union(*(e.numbers for e in group)) if group else set()
    words = set().union(*(e.words for e in group)) if group else set()
    names = claim.names if claim.language == "zh" else frozenset()
    # a claim with nothing that survives translation cannot be checked, so it is not vouched for
    return anchors(claim) > 0 and claim.numbers <= numbers and names <= words


def supports(claim: Claim, evidence: Evidence, min_support: float) -> bool:
    """One source, judged alone: enough of the words, and the same polarity (across languages: every
    number and Latin name of the claim, which survive translation)."""
    if evidence.language != claim.language:
        return anchored(claim, [evidence])
    return lexical(claim, evidence) >= min_support and polarity_agrees(claim, evidence)

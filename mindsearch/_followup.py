"""Follow-up queries built from what was read, with no model call.

A multi-hop sub-question ("Who was the first president of the association which published the Journal
of Psychotherapy Integration?") names the first hop only; the second hop's paragraph names what the
first hop found ("the American Psychological Association"), not the question's words. So after the first
search, the names the best passages add (their titles, and the names in their sentences closest to the
question) are searched again, each joined with the words of the question the passage did not already
hold ("first president"). A dependent sub-question gets its parents' short answers the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ._short_answer import _ZH_AFTER, _ZH_BEFORE
from ._text import STOPWORDS, detect_language, similarity, split_sentences, tokens

MAX_QUERY_CHARS = 300
_CAPITAL = r"[A-Z][\w'’\-.]*"
_JOIN = r"(?:of|de|the|van|von|and|for|on|in|la|le|du|der|da|di)"
# "Hank Snow", "University of Oxford", "Big Hero 6": capitalised words, joining words between them
_NAME_RUN = re.compile(rf"{_CAPITAL}(?:\s+(?:{_JOIN}\s+)*{_CAPITAL})*(?:\s+\d+\b)?")
_ZH_NAMES = (
    re.compile(r"《[^》]{1,40}》"),  # titles
    re.compile(r"[\u4e00-\u9fff]{1,6}(?:[·•][\u4e00-\u9fff]{1,8})+"),  # 史蒂文·斯皮尔伯格
    re.compile(r"[A-Z][A-Za-z'’\-.]*(?:\s+[A-Z][A-Za-z'’\-.]*)*"),  # Latin names inside Chinese text
    re.compile(r"\d{3,4}年"),
)
# words that cling to the front of a name cut out by shape ("改编自彼得·本奇利" -> the name)
_ZH_LEAD = re.compile(r"^(?:改编自|来自|根据|出自|作者|导演|歌手|演员)+")
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(rf"(?:\d{{1,2}}\s+)?(?:{_MONTHS})(?:\s+\d{{1,2}},?)?(?:\s+\d{{3,4}})?")
_LEADING = frozenset(
    "the a an in on at of by for from to and or but it he she they this that his her its".split()
)


def names(text: str) -> list[str]:
    """Names in a text, in order, each once: capitalised runs and numbers (English), and titles,
    transliterated names, Latin names and years in Chinese text."""
    if detect_language(text) == "zh":
        found = [
            _ZH_AFTER.sub("", _ZH_BEFORE.sub("", _ZH_LEAD.sub("", m.group(0))))
            for pattern in _ZH_NAMES
            for m in pattern.finditer(text)
        ]
    else:
        found = []
        for sentence in split_sentences(text):
            for match in _NAME_RUN.finditer(sentence):
                words = match.group(0).rstrip(".,").split()
                while words and words[0].lower() in _LEADING:  # "The" starting a sentence, not a name
                    words = words[1:]
                if not words or (len(words) == 1 and words[0].lower() in STOPWORDS):
                    continue
                if len(words) == 1 and not sentence[: match.start()].strip():
                    continue  # one capitalised word opening a sentence ("Some", "After"): not a name
                if not re.search(r"[^\W\d_]", " ".join(words)) or _DATE.fullmatch(" ".join(words)):
                    continue  # numbers and dates: what a hop finds is a name
                found.append(" ".join(words))
    return list(dict.fromkeys(n for n in found if n.strip()))


def residual(question: str, seen: str) -> str:
    """The question's words that ``seen`` (a passage) does not hold, in the question's order: what is
    still to be found once the passage's answer is known."""
    held = set(tokens(seen))
    question = re.sub(r"#\d+", " ", question)  # an unresolved reference to a parent's answer
    if detect_language(question) == "zh":
        return question  # bigrams do not make a readable query: the question itself goes with the name
    words = [w for w in re.findall(r"[\w'’\-]+", question) if w.lower() not in STOPWORDS]
    return " ".join(w for w in words if not set(tokens(w)) <= held)


def bridge_names(question: str, title: str, passage: str, per_passage: int = 2) -> list[str]:
    """What a passage adds to the question: its title when the question does not name it, then the
    names of its sentences closest to the question that the question does not hold."""
    asked = set(tokens(question))
    out: list[str] = []
    if title and not set(tokens(title)) <= asked:
        out.append(title)
    ranked = sorted(
        split_sentences(passage),
        key=lambda s: -len(set(tokens(s)) & asked),
    )
    for sentence in ranked[:2]:
        for name in names(sentence):
            name_tokens = set(tokens(name))
            if not name_tokens or name_tokens <= asked or name_tokens <= set(tokens(title)):
                continue
            out.append(name)
            if len(out) >= per_passage + (1 if out and out[0] == title else 0):
                return out
    return out


def follow_up_queries(
    question: str,
    passages: Sequence[tuple[str, str]],
    asked: Iterable[str],
    limit: int,
    answers: Sequence[str] = (),
) -> list[str]:
    """Up to ``limit`` new queries: each name a passage (title, text) or a parent's short answer adds,
    joined with what the question still asks; none that repeats a query already ``asked``, and none at
    all when the best passage already holds every word of the question."""
    if passages and not residual(question, " ".join(passages[0])):
        return []  # the best passage holds every word of the question: it answers, nothing to follow
    taken = list(asked)
    out: list[str] = []
    candidates: list[tuple[str, str]] = [(a, "") for a in answers if a]
    for title, passage in passages:
        candidates += [(name, f"{title} {passage}") for name in bridge_names(question, title, passage)]
    for name, seen in candidates:
        if len(out) >= limit:
            break
        rest = residual(question, seen) if seen else " ".join(re.sub(r"#\d+", " ", question).split())
        query = f"{name} {rest}".strip()[:MAX_QUERY_CHARS]
        if all(similarity(query, earlier) < 0.8 for earlier in taken):
            out.append(query)
            taken.append(query)
    return out

"""Short answers: a sub-question's answer in a few words ("Steven Spielberg", "1975").

A dependent sub-question that names its parent's answer (``#1``) needs the answer, not the parent's
first sentence ("Where was Jaws was directed by Steven Spielberg born?"), and evaluation scores the
few words, not a paragraph. Instruction models are asked to end with a line ``Short answer: ...``;
``ShortAnswerLine`` takes that line out of the streamed text (any chunking gives the same result).
When a model gives none (small base models rarely do), ``guess`` takes the names or numbers of the
answer's first sentence that the question does not already hold.
"""

from __future__ import annotations

import re

from ._text import STOPWORDS, detect_language
from .citations import sentences, strip_markers
from .citations.support import is_non_answer

# The line's label, as models write it: plain, bold, in Chinese, with either colon.
_LABEL = re.compile(
    r"[ \t>*_#-]*(?:short answer|final answer|简短答案|简答|简短回答|答案)[ \t*_]*[:：][ \t*_]*",
    re.IGNORECASE,
)
_LABEL_WORDS = ("short answer", "final answer", "简短答案", "简答", "简短回答", "答案")
_UNKNOWN = re.compile(r"^(?:unknown|none|n/?a|not found|无|未知|不详|没有)\W*$", re.IGNORECASE)
MAX_WORDS = 12
# "Steven Spielberg", "University of Oxford", "1975", "3,000": names and numbers, as a run of words
_NAME_RUN = re.compile(r"(?:[A-Z][\w'’\-]*|\d[\d,.]*)(?:\s+(?:of |de |van |von )?[A-Z][\w'’\-]*)*")


class ShortAnswerLine:
    """Splits streamed text into what the reader sees and the ``Short answer:`` line, held apart.

    Only a line that starts with the label is taken; text at the start of a line is held until it
    is clear whether it does.
    """

    def __init__(self) -> None:
        self.short = ""
        self._line = ""  # the current line, not yet passed on, while it may still be the label
        self._taking = False
        self._at_line_start = True

    def feed(self, piece: str) -> str:
        out: list[str] = []
        for char in piece:
            self._step(char, out)
        return "".join(out)

    def finish(self) -> str:
        if self._taking:
            self._take(self._line)
            self._line, self._taking = "", False
            return ""
        rest, self._line = self._line, ""
        return rest

    def _step(self, char: str, out: list[str]) -> None:
        if self._taking:
            if char == "\n":
                self._take(self._line)
                self._line, self._taking, self._at_line_start = "", False, True
            else:
                self._line += char
            return
        if not self._at_line_start:
            out.append(char)
            self._at_line_start = char == "\n"
            return
        self._line += char
        label = _LABEL.match(self._line)
        if label is not None and label.end() == len(self._line) and self._line.rstrip()[-1:] in ":：":
            self._line, self._taking = "", True
            return
        if char == "\n" or not _may_be_label(self._line):
            out.append(self._line)
            self._at_line_start = char == "\n"
            self._line = ""

    def _take(self, text: str) -> None:
        value = clean(text)
        if value:
            self.short = value


def _may_be_label(start: str) -> bool:
    """Whether ``start`` (the beginning of a line) can still grow into the label."""
    body = start.lstrip(" \t>*_#-").lower()
    if not body:
        return True
    for word in _LABEL_WORDS:
        if word.startswith(body) or body.startswith(word):
            rest = body[len(word) :] if body.startswith(word) else ""
            if not rest.strip(" \t*_") or rest.strip(" \t*_")[:1] in ":：":
                return True
    return False


def clean(text: str) -> str:
    """A short answer as given: without markers, emphasis, quotes and a final full stop."""
    value = strip_markers(text).strip().strip("*_`\"'“”「」 ").rstrip("。.").strip()
    if not value or _UNKNOWN.match(value) or len(value) > 200:
        return ""
    return value


def guess(answer: str, question: str) -> str:
    """A short answer from a cited answer when the model gave none: the names, or else the numbers,
    of its first sentence that the question does not already hold; empty when there are none, or
    when the answer says the sources do not answer."""
    text = strip_markers(answer).strip()
    first = next(iter(sentences(text)), "")
    if not first or is_non_answer(first):
        return ""
    if detect_language(first) == "zh":
        return _guess_chinese(first, question)
    asked = {w.lower() for w in re.findall(r"[\w'’\-]+", question)}
    names = [
        run
        for run in _NAME_RUN.findall(first)
        if not all(w.lower() in asked or w.lower() in STOPWORDS for w in run.split())
    ]
    names = [n for n in names if n.split()[0].lower() not in STOPWORDS or len(n.split()) > 1]
    if names:
        best = max(names, key=lambda n: len(n.split()))
        return " ".join(best.split()[:MAX_WORDS]).rstrip(".,")
    return ""


# Chinese has no capitals: names are found by their shape, in this order of trust.
_ZH_SHAPES = (
    re.compile(r"[\u4e00-\u9fff]{1,6}(?:[·•][\u4e00-\u9fff]{1,8})+"),  # 史蒂文·斯皮尔伯格
    re.compile(r"\d{1,4}年(?:\d{1,2}月)?(?:\d{1,2}日)?|\d{1,2}月\d{1,2}日"),  # 1975年6月20日
    re.compile(r"《[^》]{1,40}》"),  # 《大白鲨》
    re.compile(r"\d+(?:[.,]\d+)?(?:万|亿)?(?:年|岁|米|公里|千米|人|个|部|次|美元|元)?"),
    re.compile(r"[A-Za-z][A-Za-z .'\-]*[A-Za-z]"),
)


# Words that cling to a name when it is cut out by shape: "由史蒂文·斯皮尔伯格执导" -> the name.
_ZH_BEFORE = re.compile(r"^(?:由|是|为|被|在|于|和|与|及|将|把|的|即|乃)+")
_ZH_AFTER = re.compile(
    r"(?:执导|导演|创立|创办|创建|出生|成立|发明|编写|编剧|主演|拍摄|设计|发现|建立|领导|担任|所|的|等|所著|著)+$"
)


def _guess_chinese(sentence: str, question: str) -> str:
    for shape in _ZH_SHAPES:
        for found in shape.findall(sentence):
            name = _ZH_AFTER.sub("", _ZH_BEFORE.sub("", str(found)))
            if name and name not in question:
                return name
    return ""

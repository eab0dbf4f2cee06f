"""A planner by rule, for when a weak model's plan is invalid twice or only echoes the question.

A small base model rarely writes a usable plan; searching the question as one sub-question then misses
the second hop of a multi-hop question. These rules split the two shapes multi-hop questions mostly
take, with no model call:

- **comparison**: "Which band was formed first, The Exies or Circus Diablo?", "Are X and Y both
  directors?", "X还是Y", "X和Y都…吗": one sub-question per compared thing, plus the question itself,
  after them, to compare their answers;
- **bridge**: "Where was the director of Jaws born?", "the country where the Bubye River is found",
  "Hello Love's performer", "《大白鲨》的导演出生在哪里": first find the thing the question hinges on
  ("Who is the director of Jaws?"), then ask about it ("Where was #1 born?"); ``#1`` becomes that
  sub-question's short answer when it is searched.

A question no rule fits gives None: the question itself is then searched, as before.
"""

from __future__ import annotations

import re
from typing import Literal

from ._graph import SubQuestion
from ._text import STOPWORDS, tokens

MAX_HOPS = 3  # bridge sub-questions found before the last one, at most

# --- shared -------------------------------------------------------------------------------------------
_NAME_WORD = r"(?:[A-Z0-9\"“'][\w.'’\"”&\-]*|[A-Z][\w.'’\-]*\([^)]*\))"
_NAME_JOIN = r"(?:of|the|de|del|la|le|von|van|der|du|and|for|in|on|a|an|&|y|da|di|el|-)"
# a name: capitalised words (or numbers, quoted titles), with lower-case joining words inside
_NAME = rf"{_NAME_WORD}(?:\s+(?:{_NAME_JOIN}\s+)*{_NAME_WORD})*"
_QUESTION_WORDS = frozenset(
    "what which who whom whose where when why how is are was were do does did has have had can could "
    "in on at of for from by to".split()
)


def _strip(question: str) -> str:
    return " ".join(question.split()).strip().rstrip("?？ ").strip()


def _content(text: str) -> set[str]:
    return set(tokens(text))


def _nodes(questions: list[str]) -> list[SubQuestion]:
    """Sub-questions ``q1``..``qn``; ``#k`` in one makes it depend on ``qk``."""
    plan = []
    for number, question in enumerate(questions, start=1):
        deps = sorted({f"q{k}" for k in re.findall(r"#(\d+)", question) if int(k) < number}, key=len)
        plan.append(SubQuestion(id=f"q{number}", question=question, depends_on=deps))
    return plan


def rule_plan(question: str, language: Literal["en", "zh"], max_nodes: int = 8) -> list[SubQuestion] | None:
    """A plan for ``question`` by rule, or None when no rule fits."""
    text = _strip(question)
    if not text:
        return None
    compared = _compare_zh(text) if language == "zh" else _compare_en(text)
    questions = compared or (_bridge_zh(text) if language == "zh" else _bridge_en(text))
    if not questions or len(questions) < 2 or len(questions) > max_nodes:
        return None
    if len({q.lower() for q in questions}) != len(questions):
        return None
    plan = _nodes(questions)
    if compared:  # the question itself compares what its sub-questions found
        plan[-1] = plan[-1].model_copy(update={"depends_on": [s.id for s in plan[:-1]]})
    return plan


# --- comparison, English ------------------------------------------------------------------------------
_AUX = r"(?:Are|Were|Is|Was|Do|Does|Did|Have|Has|Had|Can|Could|Will|Would)"
_SINGULAR = {"Are": "Is", "Were": "Was", "Do": "Does", "Have": "Has"}
# "Are X and Y both ...", "Are both X and Y ...", "Were both magazines, X and Y, ..."
_BOTH_AUX = re.compile(
    rf"^(?P<aux>{_AUX})\s+(?:both\s+)?(?:(?P<kind>[a-z][\w\s]*?),\s+)?(?P<a>.+?)\s+and\s+(?P<b>.+?)"
    rf"(?:,\s+|\s+both\s+|\s+(?=(?:from|in|of|the|a|an|on|at|located|born|based|American|British)\b))"
    r"(?P<rest>.+)$"
)
# "Both X and Y films were released by what label"
_BOTH_START = re.compile(r"^Both\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)\s+(?P<rest>(?:[a-z].*|[A-Z]\w*\s+[a-z].*))$")
# "..., X or Y" and "... X or Y" with the options last
_OR_LAST = re.compile(rf"^(?P<pre>.+?),?\s+(?P<a>(?:the\s+)?{_NAME})\s+or\s+(?P<b>(?:the\s+)?{_NAME})$")
_OR_AFTER_COMMA = re.compile(r"^(?P<pre>[^,]+?),\s*(?P<a>[^,]+?)\s+or\s+(?P<b>[^,]+)$")


def _compare_en(text: str) -> list[str] | None:
    found = _OR_AFTER_COMMA.match(text) or _OR_LAST.match(text)
    if found is not None:
        pre, a, b = found["pre"].strip(), found["a"].strip(), found["b"].strip()
        if _is_option(a) and _is_option(b) and len(_content(pre)) >= 1:
            return [_about_en(a, pre), _about_en(b, pre), f"{text}?"]
    found = _BOTH_AUX.match(text)
    if found is not None:
        a, b, rest = found["a"].strip(" ,"), found["b"].strip(" ,"), found["rest"].strip()
        if _is_option(a) and _is_option(b) and rest:
            aux = _SINGULAR.get(found["aux"], found["aux"])
            rest = re.sub(r"\bboth\s+", "", rest)
            return [f"{aux} {a} {rest}?", f"{aux} {b} {rest}?", f"{text}?"]
    found = _BOTH_START.match(text)
    if found is not None:
        a, b, rest = found["a"].strip(" ,"), found["b"].strip(" ,"), found["rest"].strip()
        if _is_option(a) and _is_option(b):
            return [f"{a} {rest}?", f"{b} {rest}?", f"{text}?"]
    return None


_VERBS = (
    "formed|founded|established|created|released|published|built|born|started|opened|launched|made|"
    "produced|introduced|written|discovered|designed|invented|completed|founded"
)
_EARLIER = r"first|earlier|earliest|older|oldest|before|later|latest|newer|newest|more recent|most recent"
# what one compared thing is asked, by the comparison's word: "formed first" -> "When was X formed?"
_COMPARATIVES = (
    (
        re.compile(
            rf"\b(?P<verb>{_VERBS})\b.*\b(?:{_EARLIER})\b|\b(?:{_EARLIER})\b.*\b(?P<verb2>{_VERBS})\b", re.I
        ),
        "When was {x} {verb}?",
    ),
    (re.compile(r"\b(?:older|oldest|younger|youngest)\b", re.I), "When was {x} born?"),
    (re.compile(r"\b(?:larger|largest|bigger|biggest|smaller|smallest)\b", re.I), "How large is {x}?"),
    (re.compile(r"\b(?:taller|tallest|higher|highest)\b", re.I), "How tall is {x}?"),
    (re.compile(r"\b(?:longer|longest|shorter|shortest)\b", re.I), "How long is {x}?"),
    (re.compile(r"\b(?:more populous|most populous|population)\b", re.I), "What is the population of {x}?"),
)


def _about_en(option: str, pre: str) -> str:
    """The sub-question for one compared thing: a plain question when the comparison's word says what
    to look up ("When was The Exies formed?"), else the thing and what is asked of it."""
    for pattern, template in _COMPARATIVES:
        found = pattern.search(pre)
        if found is not None:
            verb = found.groupdict().get("verb") or found.groupdict().get("verb2") or ""
            return template.format(x=option, verb=verb.lower())
    return f"{option}: {_drop_choice_words(pre)}?"


def _is_option(text: str) -> bool:
    """A compared thing names something: a capitalised word or a number, and not too many words."""
    words = text.split()
    return 0 < len(words) <= 10 and any(w[:1].isupper() or w[:1].isdigit() for w in words)


def _drop_choice_words(pre: str) -> str:
    """ "Which band was formed first" -> "When was the band formed"? Too clever; keep the words, drop
    the choosing word so the sub-question reads as a question about one thing."""
    return re.sub(r"^(?:which|who|what)\s+(?:of\s+(?:the\s+)?(?:two|these|them)\s+)?", "", pre, flags=re.I)


# --- bridge, English ----------------------------------------------------------------------------------
_PERSON_NOUNS = frozenset(
    """actor actress author architect artist bassist brother captain ceo chairman coach composer
    creator daughter designer developer director drummer editor father founder guitarist head husband
    inventor king leader manager member minister mother owner performer player president producer
    publisher queen singer sister son songwriter spouse star stars wife winner writer narrator host
    presenter mayor governor senator premier chancellor ruler emperor monarch pope bishop""".split()
)
_NOT_BRIDGE_NOUNS = frozenset(
    """name number type kind part end start beginning middle rest title side half top bottom first
    last most one some all many each any year years date time period size area height length""".split()
)
# "the country where ...", "the association which published ...", "the man that resigned ..."
_ADJECTIVE = r"(?:(?!(?:in|of|on|at|by|for|from|to|with|and|or|the|a|an)\b)[\w'’\-]+\s+)"
_RELATIVE = re.compile(
    rf"\bthe\s+{_ADJECTIVE}{{0,3}}?(?P<noun>[\w'’\-]+)\s+(?:where|which|that|who|whose|whom|"
    r"in which|on which|at which|from which|for which)\s+"
)
_CLAUSE_END = re.compile(r",\s+(?=(?:where|what|who|which|when|how|is|was|are|were|did|does|do|an?)\b)")
# "the composer of Aschenbrödel", "the stars of Aisa Yeh Jahaan"
_OF_NAME = re.compile(
    rf"\bthe\s+{_ADJECTIVE}{{0,2}}?(?P<noun>[a-z][\w'’\-]*)\s+of\s+(?P<name>(?:the\s+)?(?:{_NAME}|#\d+))"
)
# "Hello Love's performer", "Jaws' director"
_POSSESSIVE = re.compile(
    rf"(?P<name>{_NAME})(?:'s|’s|')\s+(?P<phrase>(?:{_ADJECTIVE}{{0,3}}?)(?P<noun>[a-z][\w\-]*)(?:\s+of\s+birth)?)"
    r"(?=\s+(?:(?:in|of|on|at|by|for|from|to|with|and|or|is|was|were|are|located|lived|live|play|played|"
    r"come|came|born|made|did|do|does|have|has|had|write|wrote|stop|began|begin|jurisdiction)\b)|\s*$|,)"
)


def _bridge_en(text: str) -> list[str] | None:
    steps: list[str] = []
    rest = text
    for _ in range(MAX_HOPS):
        found = _innermost(rest)
        if found is None:
            break
        span, noun = found
        ref = f"#{len(steps) + 1}"
        outer = rest.replace(span, ref, 1)
        if len(_content(re.sub(r"#\d+", "", outer))) < 1 or len(_content(span)) < 2:
            break
        wh = "Who" if noun.lower() in _PERSON_NOUNS else "What"
        steps.append(f"{wh} is {span}?")
        rest = outer
    if not steps:
        return None
    return [*steps, f"{rest}?"]


def _innermost(text: str) -> tuple[str, str] | None:
    """The part of the question to find first, with its head noun: the last relative clause (which
    runs to the end of the question), the last "the X of Name", or the last possessive."""
    candidates: list[tuple[int, str, str]] = []
    for match in _RELATIVE.finditer(text):
        noun = match["noun"].lower()
        span = text[match.start() :]
        cut = _CLAUSE_END.search(span)
        span = span[: cut.start()] if cut else span
        if noun in _NOT_BRIDGE_NOUNS or noun in STOPWORDS or "#" in span.split()[0]:
            continue
        if _has_name(span[len(match.group(0)) - 1 :]):
            candidates.append((match.start(), span, noun))
    for match in _OF_NAME.finditer(text):
        noun = match["noun"].lower()
        if noun in _NOT_BRIDGE_NOUNS or noun in STOPWORDS:
            continue
        candidates.append((match.start(), match.group(0).rstrip(" ,"), noun))
    for match in _POSSESSIVE.finditer(text):
        noun = match["noun"].lower()
        name = match["name"]
        if noun in STOPWORDS or name.split()[0].lower() in _QUESTION_WORDS:
            continue
        candidates.append((match.start(), match.group(0), noun))
    if not candidates:
        return None
    start, span, noun = max(candidates, key=lambda c: (c[0], -len(c[1])))
    if start == 0 or span.strip() == text.strip():
        return None  # the whole question: nothing is left to ask about it
    return span, noun


def _has_name(text: str) -> bool:
    return bool(re.search(r"(?:^|\s)(?:[A-Z0-9\"“]|#\d)", text))


# --- Chinese ------------------------------------------------------------------------------------------
_ZH_OR = re.compile(r"^(?P<pre>.*?)[，,：:]?\s*(?P<a>[^，,：:]+?)还是(?P<b>[^，,：:？?]+?)(?P<post>[？?]?)$")
_ZH_WHICH = re.compile(r"^(?P<a>[^，,]+?)(?:和|与|跟)(?P<b>[^，,]+?)(?P<which>哪个|哪一个|谁)(?P<rest>.+)$")
_ZH_BOTH = re.compile(r"^(?P<a>[^，,]+?)(?:和|与|跟|及)(?P<b>[^，,]+?)(?P<rest>都.+)$")
_ZH_ROLE = (
    "导演|作者|创始人|创办人|创立者|建立者|总统|首相|总理|主席|国王|校长|市长|首都|丈夫|妻子|父亲|母亲|"
    "儿子|女儿|作曲|作曲家|演唱者|歌手|主演|设计师|发明者|出版社|出版商|所在国家|所在国|所在城市|所在地"
)
# "《大白鲨》的导演出生在哪里" -> "《大白鲨》的导演是谁？", "#1出生在哪里？"
_ZH_OF_ROLE = re.compile(rf"^(?P<thing>.+?)的(?P<role>{_ZH_ROLE})(?P<rest>.+)$")
_ZH_PEOPLE = (
    "导演",
    "作者",
    "创始人",
    "创办人",
    "创立者",
    "建立者",
    "总统",
    "首相",
    "总理",
    "主席",
    "国王",
    "校长",
    "市长",
    "丈夫",
    "妻子",
    "父亲",
    "母亲",
    "儿子",
    "女儿",
    "作曲",
    "作曲家",
    "演唱者",
    "歌手",
    "主演",
    "设计师",
    "发明者",
)


def _compare_zh(text: str) -> list[str] | None:
    found = _ZH_OR.match(text)
    if found is not None:
        pre, a, b = found["pre"].strip(" ，,"), found["a"].strip(), found["b"].strip()
        if a and b and pre:
            return [_about_zh(a, pre), _about_zh(b, pre), f"{text}？"]
        if a and b:
            return [f"{a}？", f"{b}？", f"{text}？"]
    found = _ZH_WHICH.match(text)
    if found is not None:  # "珠穆朗玛峰和K2哪个更高"
        a, b, pre = found["a"].strip(), found["b"].strip(), found["which"] + found["rest"]
        if a and b:
            return [_about_zh(a, pre), _about_zh(b, pre), f"{text}？"]
    found = _ZH_BOTH.match(text)
    if found is not None:
        a, b = found["a"].strip(), found["b"].strip()
        rest = found["rest"][1:]  # without 都
        if a and b and rest:
            return [f"{a}{rest}？", f"{b}{rest}？", f"{text}？"]
    return None


_ZH_COMPARATIVES = (
    (
        re.compile(
            r"(?P<verb>成立|创立|创建|建立|出生|发行|出版|上映|发布|开业|建成).*(?:更早|最早|更晚|最晚|先|后)|"
            r"(?:更早|最早|更晚|最晚|先|后).*(?P<verb2>成立|创立|创建|建立|出生|发行|出版|上映|发布|开业|建成)"
        ),
        "{x}是什么时候{verb}的？",
    ),
    (re.compile(r"年纪更大|年龄更大|更年长|更老|更年轻|年龄最大"), "{x}是什么时候出生的？"),
    (re.compile(r"更大|最大|更小|面积"), "{x}有多大？"),
    (re.compile(r"更高|最高|更矮"), "{x}有多高？"),
    (re.compile(r"更长|最长|更短"), "{x}有多长？"),
)


def _about_zh(option: str, pre: str) -> str:
    for pattern, template in _ZH_COMPARATIVES:
        found = pattern.search(pre)
        if found is not None:
            verb = found.groupdict().get("verb") or found.groupdict().get("verb2") or ""
            return template.format(x=option, verb=verb)
    return f"{option}：{pre}？"


def _bridge_zh(text: str) -> list[str] | None:
    found = _ZH_OF_ROLE.match(text)
    if found is None:
        return None
    thing, role, rest = found["thing"].strip(), found["role"], found["rest"].strip()
    if not thing or not rest or rest in ("是谁", "是什么", "是哪里", "在哪里"):
        return None  # "X的导演是谁": one question
    who = "是谁" if role in _ZH_PEOPLE else "是什么"
    return [f"{thing}的{role}{who}？", f"#1{rest}？"]

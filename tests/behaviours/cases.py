"""The reply-style corpus: how real models write, one case per style, as data.

A case is what a model of one family writes at one stage of the pipeline (``plan``: the planner,
``answer``: a searcher, ``write``: the writer, ``stream``: the shape of the stream itself), with what
the reader must then see (``Expect``). Every other call of the run gets a plain default reply, so a
case tests one thing. Add a style by adding a ``Case`` to ``CASES``.

Replies cite documents by name, ``{@jaws}``: the harness puts in the number the model was shown for
that document (``{@range:jaws,benchley}`` gives ``1-2``, ``{@dash:...}`` ``1–2``), as a real model
reads numbers off its prompt.
A literal number (``[9]``) stays as written: a number no source has. A reply is a string (streamed in
token-like pieces, or as ``Case.split`` says) or a list of stream pieces: ``Text`` (filled, then cut
into pieces), plain strings, raw delta dicts (``{"reasoning_content": ...}``, ``tool_call_delta``) and
``Chunk`` objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mindsearch.testing import Chunk, Piece, plan_json, tool_call_delta


@dataclass(frozen=True)
class Text:
    """Reply text inside a list of pieces: placeholders filled, then cut as ``how`` says."""

    text: str
    how: str = "tokens"


Reply = str | list[Piece | Text]
Stage = Literal["plan", "answer", "write", "stream"]
Sub = tuple[str, str, tuple[str, ...]]  # a planned node: id, question, depends_on


# -- the documents every run can find (MemoryEngine); each case's searchers see the relevant ones ---
DOCS: dict[str, tuple[str, str]] = {
    "jaws": (
        "Jaws (film)",
        "Jaws is a 1975 American thriller film directed by Steven Spielberg. It is based on the 1974 "
        "novel by Peter Benchley. The film was released by Universal Pictures in June 1975.",
    ),
    "spielberg": (
        "Steven Spielberg",
        "Steven Spielberg is an American film director. He was born in Cincinnati, Ohio, on December 18, "
        "1946. He co-founded the studio DreamWorks in 1994.",
    ),
    "benchley": (
        "Peter Benchley",
        "Peter Benchley was an American author, born in New York City in 1940. He wrote the novel Jaws, "
        "published in 1974.",
    ),
    "everest": (
        "Mount Everest",
        "Mount Everest is the highest mountain on Earth, with an elevation of 8,849 metres. It lies in "
        "the Himalayas, on the border between Nepal and China.",
    ),
    "k2": (
        "K2",
        "K2 is the second-highest mountain on Earth, with an elevation of 8,611 metres. It lies in the "
        "Karakoram range, on the border between Pakistan and China.",
    ),
    "dabaisha": (
        "大白鲨 (电影)",
        "《大白鲨》是一部1975年上映的美国惊悚电影，由史蒂文·斯皮尔伯格执导，改编自彼得·本奇利1974年的同名小说。",
    ),
    "sbbg": (
        "史蒂文·斯皮尔伯格",
        "史蒂文·斯皮尔伯格是美国电影导演，1946年12月18日出生于美国俄亥俄州辛辛那提。他在1994年与人共同创立了梦工厂。",
    ),
}

# -- questions, with their default plan, searcher answers and writer reply -------------------------
Q_JAWS = "Who directed Jaws?"
Q_BORN = "Where was the director of Jaws born?"
Q_MUSIC = "Who composed the music for Jaws?"
Q_PEAKS = "Which is higher, Mount Everest or K2?"
Q_ZH_ONE = "《大白鲨》的导演史蒂文·斯皮尔伯格出生在哪里？"
Q_ZH_BORN = "《大白鲨》的导演出生在哪里？"
Q_ZH_MUSIC = "谁为《大白鲨》作曲？"

WHO = "Who directed Jaws?"
WHERE = "Where was Steven Spielberg born?"
EVEREST = "How high is Mount Everest?"
K2 = "How high is K2?"
ZH_WHO = "《大白鲨》是谁执导的？"
ZH_WHERE = "史蒂文·斯皮尔伯格出生在哪里？"

P_BORN: tuple[Sub, ...] = (("q1", WHO, ()), ("q2", WHERE, ()))
P_ZH_BORN: tuple[Sub, ...] = (("q1", ZH_WHO, ()), ("q2", ZH_WHERE, ()))


def plan_of(*subs: Sub, finish: bool = True) -> str:
    return plan_json(*((i, q, list(d)) for i, q, d in subs), finish=finish)


DEFAULT_PLANS: dict[str, str] = {
    Q_JAWS: plan_of(("q1", Q_JAWS, ())),
    Q_BORN: plan_of(*P_BORN),
    Q_MUSIC: plan_of(("q1", Q_MUSIC, ())),
    WHERE: plan_of(("q1", WHERE, ())),
    Q_PEAKS: plan_of(("q1", EVEREST, ()), ("q2", K2, ())),
    Q_ZH_ONE: plan_of(("q1", Q_ZH_ONE, ())),
    Q_ZH_BORN: plan_of(*P_ZH_BORN),
    Q_ZH_MUSIC: plan_of(("q1", Q_ZH_MUSIC, ())),
}

DEFAULT_ANSWERS: dict[str, Reply] = {
    WHO: "Jaws was directed by Steven Spielberg [{@jaws}]. It is based on the 1974 novel by Peter Benchley "
    "[{@jaws}].",
    WHERE: "Steven Spielberg was born in Cincinnati, Ohio, on December 18, 1946 [{@spielberg}].",
    Q_BORN: "The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio [{@jaws}][{@spielberg}].",
    Q_MUSIC: "The passages do not say who composed the music for Jaws.",
    EVEREST: "Mount Everest has an elevation of 8,849 metres [{@everest}].",
    K2: "K2 has an elevation of 8,611 metres [{@k2}].",
    ZH_WHO: "《大白鲨》由史蒂文·斯皮尔伯格执导[{@dabaisha}]。",
    ZH_WHERE: "史蒂文·斯皮尔伯格出生于美国俄亥俄州辛辛那提[{@sbbg}]。",
    Q_ZH_ONE: "史蒂文·斯皮尔伯格出生于美国俄亥俄州辛辛那提[{@sbbg}]。",
    Q_ZH_BORN: "《大白鲨》的导演史蒂文·斯皮尔伯格出生于美国俄亥俄州辛辛那提[{@dabaisha}][{@sbbg}]。",
}

DEFAULT_WRITERS: dict[str, str] = {
    Q_BORN: "The director of Jaws, Steven Spielberg [{@jaws}], was born in Cincinnati, Ohio [{@spielberg}].",
    Q_PEAKS: "Mount Everest is higher. Its elevation is 8,849 metres [{@everest}], while K2 has an "
    "elevation of 8,611 metres [{@k2}].",
    Q_ZH_BORN: "《大白鲨》的导演史蒂文·斯皮尔伯格[{@dabaisha}]出生于美国俄亥俄州辛辛那提[{@sbbg}]。",
}

USAGE = {"prompt_tokens": 812, "completion_tokens": 41, "total_tokens": 853}


NOT_FOUND_EN = "I could not find an answer to this question in the sources I read."  # no_answer.en.md
NOT_FOUND_ZH = "我在读到的资料中没有找到这个问题的答案。"  # prompts/common/no_answer.zh.md


@dataclass(frozen=True)
class Expect:
    """What the reader must see after the run.

    ``cites`` are checked in the final answer, ``node_cites`` in one node's answer: the sentence that
    holds the fragment cites exactly these documents (none for ``()``). ``dropped`` are
    ``citation_dropped`` events that must be there: (``"node"`` or ``"answer"``, reason, marker as the
    model numbered it, or ``""`` for any). ``plan`` is every node the planner added, round by round.
    """

    plan: tuple[Sub, ...] | None = None
    fell_back: bool = False  # no valid plan: the question itself searched, said by the plan's note, no error
    plan_or_fallback: bool = False  # ``plan``, or else the fallback: either is an honest outcome
    plan_note: str = ""  # in the first plan event's note
    cites: tuple[tuple[str, tuple[str, ...]], ...] = ()
    node_cites: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    dropped: tuple[tuple[str, str, str], ...] = ()
    short_answers: tuple[tuple[str, str], ...] = ()  # node id, node_done.short_answer
    rewritten: tuple[tuple[str, str], ...] = ()  # node id, the sub-question as searched
    contains: tuple[str, ...] = ()  # in the final answer
    absent: tuple[str, ...] = ()  # in neither the final answer nor any node answer
    answer: str | None = None  # the final answer, exactly
    ok: bool | None = True  # done.ok (None: not checked)
    errors: tuple[str, ...] = ()  # stages of error events that may come
    same_as_whole: bool = False  # the same run with the reply in one piece gives the same answers
    prose: bool = True  # the reader sees every word the model wrote (off where dropping some is fair)
    failed: tuple[tuple[str, str], ...] = ()  # node id, words of its error: a node that must fail


@dataclass(frozen=True)
class Case:
    id: str  # "<model family>/<style>"
    model: str  # the model (and server) whose writing it imitates
    stage: Stage
    question: str
    expect: Expect
    plan: Reply | None = None  # the first planner reply (default: DEFAULT_PLANS)
    repair: Reply | None = None  # the reply to the repair round (default: the same reply again)
    later_plan: Reply | None = None  # replies of rounds after the first (default: finish)
    answers: dict[str, Reply] = field(default_factory=dict)  # searcher replies by sub-question
    writer: Reply | None = None  # the writer's reply (default: DEFAULT_WRITERS)
    split: str = "tokens"  # how string replies are cut into stream pieces
    preamble: str = ""  # put before every reply (a chat template that opens each reply inside <think>)


def plan_case(id: str, model: str, reply: Reply, expect: Expect, question: str = Q_BORN, **kw: Any) -> Case:
    """The planner's first reply is the style under test."""
    return Case(id, model, "plan", question, expect, plan=reply, **kw)


def answer_case(
    id: str,
    model: str,
    reply: Reply,
    expect: Expect,
    question: str = Q_JAWS,
    stage: Stage = "answer",
    **kw: Any,
) -> Case:
    """A searcher's reply is the style under test (the question is its own one sub-question, so the
    node's answer is also the final answer, checked again by the writer's stream)."""
    return Case(id, model, stage, question, expect, answers={question: reply}, **kw)


def write_case(
    id: str,
    model: str,
    reply: Reply,
    expect: Expect,
    question: str = Q_BORN,
    stage: Stage = "write",
    **kw: Any,
) -> Case:
    """The writer's reply is the style under test (two sub-questions, answered by the defaults)."""
    return Case(id, model, stage, question, expect, writer=reply, **kw)


JSON_BORN = plan_of(*P_BORN)
ZH_PLAN = json.dumps(json.loads(plan_of(*P_ZH_BORN)), ensure_ascii=False)
PRETTY_BORN = json.dumps(json.loads(JSON_BORN), indent=2)
BORN_CITES = (("Cincinnati, Ohio", ("jaws", "spielberg")),)
JAWS_CITE = (("directed by Steven Spielberg", ("jaws",)),)

PLANS: list[Case] = [
    plan_case(
        "internlm2.5-7b-chat-lmdeploy/plan-bare-json",
        "InternLM2.5 on LMDeploy",
        JSON_BORN,
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "qwen2.5-7b-instruct-vllm/plan-json-fence",
        "Qwen2.5 on vLLM",
        f"```json\n{PRETTY_BORN}\n```",
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "llama3.1-8b-instruct-ollama/plan-uppercase-JSON-fence",
        "Llama 3.1 on Ollama",
        f"```JSON\n{PRETTY_BORN}\n```\n",
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "mistral-7b-instruct/plan-unclosed-fence",
        "Mistral 7B Instruct (hit its stop word)",
        f"```json\n{PRETTY_BORN}\n",
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "gpt-4o/plan-json-then-prose",
        "GPT-4o class without response_format",
        f"{JSON_BORN}\n\nThis plan first finds the director {{q1}}, then where he was born.",
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "llama3-8b-instruct/plan-prose-then-json",
        "Llama 3 8B Instruct",
        f"Sure! Here is the plan for the question:\n\n{PRETTY_BORN}",
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "deepseek-r1-distill-qwen-7b/plan-think-then-json",
        "DeepSeek-R1 distill, <think> in content",
        "<think>\nThe user wants {the birthplace}. Two hops: [1] the director, then [2] his birthplace. "
        'Something like {"add": []} would be wrong.\n</think>\n\n' + JSON_BORN,
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "qwen3-8b-vllm/plan-opens-inside-think",
        "Qwen3 template: <think> in the prompt",
        "Okay, let me break this down {step by step}. First who directed it, then where.\n</think>\n\n"
        f"```json\n{PRETTY_BORN}\n```",
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "deepseek-r1-vllm/plan-reasoning-content",
        "DeepSeek-R1 on vLLM (reasoning parser)",
        [
            {"role": "assistant", "content": ""},
            {"reasoning_content": "Two hops: "},
            {"reasoning_content": '{"add": []} would be wrong, I need q1 and q2.'},
            {"content": ""},
            Text(JSON_BORN),
            Chunk(finish_reason="stop"),
        ],
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "qwen2.5-3b-ollama/plan-python-dict-trailing-commas",
        "Qwen2.5 3B writing a Python dict",
        "{'add': [{'id': 'q1', 'question': 'Who directed Jaws?', 'depends_on': [],}, "
        "{'id': 'q2', 'question': \"Where was Steven Spielberg born?\", 'depends_on': [],},], "
        "'finish': True,}",
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "llama3.2-3b-instruct/plan-False-then-second-round",
        "Llama 3.2 3B, Python booleans",
        '{"add": [{"id": "q1", "question": "Who directed Jaws?", "depends_on": []}], "finish": False}',
        Expect(plan=(("q1", WHO, ()), ("q2", WHERE, ("q1",))), cites=BORN_CITES),
        later_plan='{"add": [{"id": "q2", "question": "Where was Steven Spielberg born?", '
        '"depends_on": ["q1"]}], "finish": True}',
    ),
    plan_case(
        "qwen2.5-7b-instruct-vllm-hermes/plan-tool-call",
        "Qwen2.5 on vLLM with a tool parser",
        [
            {"role": "assistant", "content": None},
            tool_call_delta(JSON_BORN[:40], name="PlanAction", call_id="call_0"),
            tool_call_delta(JSON_BORN[40:]),
            Chunk(finish_reason="tool_calls"),
        ],
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "qwen2.5-7b-instruct-zh/plan-fullwidth-punctuation",
        "Qwen2.5 answering in Chinese",
        '{"add"：[{"id"："q1"，"question"："《大白鲨》是谁执导的？"，"depends_on"：[]}，'
        '{"id"："q2"，"question"："史蒂文·斯皮尔伯格出生在哪里？"，"depends_on"：[]}]，"finish"：true}',
        Expect(plan=P_ZH_BORN, cites=(("辛辛那提", ("dabaisha", "sbbg")),)),
        question=Q_ZH_BORN,
    ),
    plan_case(
        "qwen2.5-7b-instruct-zh/plan-chinese-prose-around-fence",
        "Qwen2.5 answering in Chinese",
        f"好的，以下是计划：\n```json\n{ZH_PLAN}\n```\n这样可以先找到导演，再查出生地。",
        Expect(plan=P_ZH_BORN, cites=(("辛辛那提", ("dabaisha", "sbbg")),)),
        question=Q_ZH_BORN,
    ),
    plan_case(
        "llama3-8b-instruct/plan-two-json-objects",
        "Llama 3 repeating itself",
        f'{JSON_BORN}\n{{"add": [], "finish": true}}',
        Expect(plan=P_BORN, cites=BORN_CITES),
    ),
    plan_case(
        "gemma-2b-base/plan-format-example-then-plan",
        "a small base model echoing the format",
        'Format: {"add": [{"id": "q1", "question": "...", "depends_on": []}], "finish": false}\n'
        f"Plan: {JSON_BORN}",
        Expect(plan=P_BORN, plan_or_fallback=True, absent=("...",)),
    ),
    plan_case(
        "tinyllama-1.1b-base/plan-no-json-at-all",
        "a 1B base model that does not write JSON",
        "Sure! First find out who directed Jaws, then find out where that person was born.",
        Expect(plan=(("q1", Q_BORN, ()),), fell_back=True, cites=BORN_CITES, ok=None),
    ),
    plan_case(
        "llama3.2-1b-instruct/plan-unknown-dependency",
        "Llama 3.2 1B naming a node it never added",
        plan_of(("q1", WHO, ("q3",)), ("q2", WHERE, ("q1",))),
        Expect(plan=(("q1", Q_BORN, ()),), fell_back=True, cites=BORN_CITES, ok=None),
    ),
    plan_case(
        "internlm2.5-7b-chat-lmdeploy/plan-cycle-then-repaired",
        "InternLM2.5 fixing its plan",
        plan_of(("q1", WHO, ("q2",)), ("q2", WHERE, ("q1",))),
        Expect(plan=P_BORN, plan_note="repaired after one round", cites=BORN_CITES),
        repair=f"```json\n{JSON_BORN}\n```",
    ),
    plan_case(
        "llama3.2-3b-instruct/plan-echoes-the-question",
        "a small model that only echoes the question",
        plan_of(("step1", Q_BORN, ())),
        Expect(plan=(("q1", Q_BORN, ()),), cites=BORN_CITES),
    ),
    plan_case(
        "deepseek-v3/plan-dependent-hash-reference",
        "DeepSeek V3, MuSiQue-style #1",
        plan_of(("q1", WHO, ()), ("q2", "Where was #1 born?", ("q1",))),
        Expect(
            plan=(("q1", WHO, ()), ("q2", "Where was #1 born?", ("q1",))),
            rewritten=(("q2", WHERE),),
            short_answers=(("q1", "Steven Spielberg"),),
            cites=BORN_CITES,
        ),
        answers={WHO: "Jaws was directed by Steven Spielberg [{@jaws}].\nShort answer: Steven Spielberg"},
    ),
    plan_case(
        "qwen2.5-7b-instruct-zh/plan-dependent-hash-reference",
        "Qwen2.5 in Chinese, #1 and 简短答案",
        plan_of(("q1", ZH_WHO, ()), ("q2", "#1出生在哪里？", ("q1",))),
        Expect(
            plan=(("q1", ZH_WHO, ()), ("q2", "#1出生在哪里？", ("q1",))),
            rewritten=(("q2", ZH_WHERE),),
            short_answers=(("q1", "史蒂文·斯皮尔伯格"),),
            cites=(("辛辛那提", ("dabaisha", "sbbg")),),
        ),
        question=Q_ZH_BORN,
        answers={ZH_WHO: "《大白鲨》由史蒂文·斯皮尔伯格执导[{@dabaisha}]。\n简短答案：史蒂文·斯皮尔伯格"},
    ),
    plan_case(
        "qwen2.5-7b-instruct-zh/plan-dependent-hash-reference-no-short-line",
        "Qwen2.5 in Chinese, #1",
        plan_of(("q1", ZH_WHO, ()), ("q2", "#1出生在哪里？", ("q1",))),
        Expect(
            plan=(("q1", ZH_WHO, ()), ("q2", "#1出生在哪里？", ("q1",))),
            rewritten=(("q2", ZH_WHERE),),
            cites=(("辛辛那提", ("dabaisha", "sbbg")),),
        ),
        question=Q_ZH_BORN,
    ),
    plan_case(
        "gpt-4o-mini/plan-dependent-hash-reference-no-short-line",
        "GPT-4o mini, #1, no short line",
        plan_of(("q1", WHO, ()), ("q2", "Where was #1 born?", ("q1",))),
        Expect(
            plan=(("q1", WHO, ()), ("q2", "Where was #1 born?", ("q1",))),
            rewritten=(("q2", WHERE),),
            cites=BORN_CITES,
        ),
    ),
]

ANSWERS: list[Case] = [
    answer_case(
        "internlm2.5-7b-chat-lmdeploy/answer-double-brackets",
        "InternLM2.5 (MindSearch's [[n]])",
        "Jaws was directed by Steven Spielberg[[{@jaws}]]. It is based on the 1974 novel by Peter "
        "Benchley[[{@jaws}]][[{@benchley}]].",
        Expect(cites=(*JAWS_CITE, ("novel by Peter Benchley", ("jaws", "benchley")))),
    ),
    answer_case(
        "internlm2.5-7b-chat-lmdeploy/answer-bullets-double-brackets",
        "InternLM2.5, a list",
        "Jaws was directed by Steven Spielberg[[{@jaws}]].\n\n- Released: June 1975[[{@jaws}]]\n"
        "- Based on: the 1974 novel by Peter Benchley[[{@jaws}]][[{@benchley}]]",
        Expect(
            cites=(*JAWS_CITE, ("June 1975", ("jaws",)), ("novel by Peter Benchley", ("jaws", "benchley")))
        ),
    ),
    answer_case(
        "qwen2.5-7b-instruct/answer-lenticular-in-english",
        "Qwen2.5 writing 【n】 in English",
        "Jaws was directed by Steven Spielberg【{@jaws}】. Peter Benchley wrote the novel it is "
        "based on【{@benchley}】.",
        Expect(cites=(*JAWS_CITE, ("wrote the novel it is based on", ("benchley",)))),
    ),
    answer_case(
        "gpt-4o-file-search/answer-lenticular-dagger",
        "OpenAI file search 【n†source】",
        "Jaws is a 1975 thriller directed by Steven Spielberg 【{@jaws}†source】. It was adapted "
        "from Peter Benchley's novel 【{@benchley}†Peter Benchley】.",
        Expect(cites=(*JAWS_CITE, ("Benchley's novel", ("benchley",)))),
    ),
    answer_case(
        "llama3.1-8b-instruct/answer-footnote-markers",
        "Llama 3.1 writing Markdown footnotes",
        "Jaws was directed by Steven Spielberg[^{@jaws}]. The film is based on the 1974 novel by "
        "Peter Benchley[^{@jaws}][^{@benchley}].",
        Expect(cites=(*JAWS_CITE, ("novel by Peter Benchley", ("jaws", "benchley")))),
    ),
    answer_case(
        "perplexica-llama3/answer-citation-prefix",
        "a Perplexica-style prompt, [citation:n]",
        "Jaws was directed by Steven Spielberg [citation:{@jaws}]. It was released by Universal "
        "Pictures in June 1975 [citation:{@jaws}].",
        Expect(cites=(*JAWS_CITE, ("Universal Pictures in June 1975", ("jaws",)))),
    ),
    answer_case(
        "gpt-4o-mini/answer-markdown-link-citations",
        "GPT-4o mini linking its citations",
        "Jaws was directed by Steven Spielberg [{@jaws}](https://example.org/jaws). It is based on "
        "a novel by Peter Benchley [{@benchley}](https://example.org/benchley).",
        Expect(cites=(*JAWS_CITE, ("novel by Peter Benchley", ("benchley",))), absent=("example.org",)),
    ),
    answer_case(
        "gpt-4o/answer-link-url-with-parentheses",
        "GPT-4o linking a Wikipedia-style URL",
        "Jaws was directed by Steven Spielberg [{@jaws}](https://example.org/wiki/Jaws_(film)).",
        Expect(cites=JAWS_CITE, absent=("example.org", "(film)")),
    ),
    answer_case(
        "gpt-4o/answer-comma-list",
        "GPT-4o class, [1, 2]",
        "Jaws, a film directed by Steven Spielberg, is based on the 1974 novel by Peter Benchley "
        "[{@jaws}, {@benchley}].",
        Expect(cites=(("novel by Peter Benchley", ("jaws", "benchley")),)),
    ),
    answer_case(
        "qwen2.5-7b-instruct-zh/answer-fullwidth-comma-list",
        "Qwen2.5 in Chinese, [1，2]",
        "史蒂文·斯皮尔伯格是执导《大白鲨》的美国导演[{@dabaisha}，{@sbbg}]。他出生于美国俄亥俄州辛辛那提[{@sbbg}]。",
        Expect(cites=(("美国导演", ("dabaisha", "sbbg")), ("辛辛那提", ("sbbg",)))),
        question=Q_ZH_ONE,
    ),
    answer_case(
        "llama3.1-70b-instruct/answer-range",
        "Llama 3.1 70B, [1-2]",
        "Jaws, a 1975 film directed by Steven Spielberg, is based on the 1974 novel by Peter "
        "Benchley [{@range:jaws,benchley}].",
        Expect(cites=(("novel by Peter Benchley", ("jaws", "benchley")),)),
    ),
    answer_case(
        "deepseek-v3/answer-marker-after-full-stop-no-space",
        "DeepSeek V3, 'Spielberg.[1]'",
        "Jaws was directed by Steven Spielberg.[{@jaws}] It was released in June 1975.[{@jaws}]",
        Expect(
            cites=(*JAWS_CITE, ("released in June 1975", ("jaws",))),
            answer="Jaws was directed by Steven Spielberg [1]. It was released in June 1975 [1].",
        ),
    ),
    answer_case(
        "mistral-7b-instruct/answer-marker-after-full-stop-spaced",
        "Mistral 7B, 'Spielberg. [1]'",
        "Jaws was directed by Steven Spielberg. [{@jaws}] It is based on a novel by Peter Benchley. "
        "[{@jaws}][{@benchley}]",
        Expect(cites=(*JAWS_CITE, ("novel by Peter Benchley", ("jaws", "benchley")))),
    ),
    answer_case(
        "qwen2.5-7b-instruct-zh/answer-marker-after-chinese-full-stop",
        "Qwen2.5, '执导。[1]'",
        "《大白鲨》由史蒂文·斯皮尔伯格执导。[{@dabaisha}]他出生于美国俄亥俄州辛辛那提。[{@sbbg}]",
        Expect(cites=(("执导", ("dabaisha",)), ("辛辛那提", ("sbbg",)))),
        question=Q_ZH_ONE,
    ),
    answer_case(
        "llama3-8b-instruct/answer-marker-at-line-start",
        "Llama 3 opening lines with the source",
        "[{@jaws}] Jaws was directed by Steven Spielberg.\n[{@benchley}] Peter Benchley wrote the "
        "novel Jaws.",
        Expect(cites=(*JAWS_CITE, ("Benchley wrote the novel", ("benchley",)))),
    ),
    answer_case(
        "phi-3-mini/answer-marker-alone-on-next-line",
        "Phi-3 mini putting the marker on a line",
        "Jaws was directed by Steven Spielberg.\n[{@jaws}]",
        Expect(cites=JAWS_CITE),
    ),
    answer_case(
        "gpt-4o/answer-repeated-markers",
        "GPT-4o class repeating a marker",
        "Jaws was directed by Steven Spielberg [{@jaws}][{@jaws}]. It was released in June 1975 "
        "[{@jaws}] [{@jaws}].",
        Expect(cites=(*JAWS_CITE, ("June 1975", ("jaws",)))),
    ),
    answer_case(
        "deepseek-v3/answer-dangling-number",
        "DeepSeek V3 citing a passage it was not shown",
        "Jaws was directed by Steven Spielberg [{@jaws}][9].",
        Expect(cites=JAWS_CITE, dropped=(("node", "dangling", "[9]"),)),
    ),
    answer_case(
        "llama3-8b-instruct/answer-negated-claim",
        "Llama 3 8B negating what the source says",
        "Jaws was directed by Steven Spielberg [{@jaws}]. It was not based on a novel [{@jaws}].",
        Expect(cites=(*JAWS_CITE, ("not based on a novel", ())), dropped=(("node", "unsupported", ""),)),
    ),
    answer_case(
        "mistral-7b-instruct/answer-number-the-source-lacks",
        "Mistral 7B, a wrong year",
        "Jaws was directed by Steven Spielberg in 1976 [{@jaws}].",
        # nothing vouches for the only sentence: the node fails and the reader is told, not misled
        Expect(
            dropped=(("node", "unsupported", ""),),
            answer=NOT_FOUND_EN,
            ok=False,
            errors=("node",),
            prose=False,
            failed=(("q1", "support"),),
        ),
    ),
    answer_case(
        "llama3-8b-instruct/answer-name-the-source-lacks",
        "Llama 3 8B, names not in the source",
        "Jaws was directed by Steven Spielberg [{@jaws}]. It was produced by Richard Zanuck and "
        "David Brown [{@jaws}].",
        Expect(
            cites=(*JAWS_CITE, ("Richard Zanuck and David Brown", ())), dropped=(("node", "unsupported", ""),)
        ),
    ),
    answer_case(
        "gpt-4o/answer-sources-do-not-say",
        "GPT-4o class, an honest non-answer (cited anyway)",
        "The passages do not say who composed the music for Jaws [{@jaws}].",
        Expect(
            dropped=(("node", "unsupported", ""),),
            answer=NOT_FOUND_EN,
            ok=False,
            errors=("node",),
            prose=False,
            failed=(("q1", "do not answer"),),
        ),
        question=Q_MUSIC,
    ),
    answer_case(
        "qwen2.5-7b-instruct-zh/answer-sources-do-not-say",
        "Qwen2.5, an honest non-answer in Chinese",
        "资料中没有提到谁为《大白鲨》作曲[{@dabaisha}]。",
        Expect(
            dropped=(("node", "unsupported", ""),),
            answer=NOT_FOUND_ZH,
            ok=False,
            errors=("node",),
            prose=False,
            failed=(("q1", "do not answer"),),
        ),
        question=Q_ZH_MUSIC,
    ),
    answer_case(
        "gpt-4o/answer-short-answer-line",
        "GPT-4o class following the prompt's last line",
        "Jaws was directed by Steven Spielberg [{@jaws}]. It is based on the 1974 novel by Peter "
        "Benchley [{@jaws}].\nShort answer: Steven Spielberg",
        Expect(cites=JAWS_CITE, short_answers=(("q1", "Steven Spielberg"),)),
    ),
    answer_case(
        "llama3.1-8b-instruct/answer-short-answer-bold",
        "Llama 3.1, a bold label after a blank line",
        "Jaws was directed by Steven Spielberg [{@jaws}].\n\n**Short answer:** Steven Spielberg",
        Expect(cites=JAWS_CITE, short_answers=(("q1", "Steven Spielberg"),)),
    ),
    answer_case(
        "mistral-7b-instruct/answer-short-answer-cited",
        "Mistral 7B citing its short answer too",
        "Jaws was directed by Steven Spielberg [{@jaws}].\nShort answer: Steven Spielberg [{@jaws}]",
        Expect(cites=JAWS_CITE, short_answers=(("q1", "Steven Spielberg"),)),
    ),
    answer_case(
        "qwen2.5-7b-instruct-zh/answer-short-answer-chinese",
        "Qwen2.5 in Chinese, 简短答案：",
        "史蒂文·斯皮尔伯格出生于美国俄亥俄州辛辛那提[{@sbbg}]。\n简短答案：美国俄亥俄州辛辛那提",
        Expect(cites=(("辛辛那提", ("sbbg",)),), short_answers=(("q1", "美国俄亥俄州辛辛那提"),)),
        question=Q_ZH_ONE,
    ),
    answer_case(
        "gpt-4o/answer-short-answer-unknown",
        "GPT-4o class: no answer, 'Short answer: unknown'",
        "The passages do not say who composed the music for Jaws.\nShort answer: unknown",
        Expect(
            answer=NOT_FOUND_EN, ok=False, errors=("node",), prose=False, failed=(("q1", "do not answer"),)
        ),
        question=Q_MUSIC,
    ),
    answer_case(
        "qwen3-8b-vllm/answer-reasoning-content",
        "Qwen3 on vLLM: reasoning deltas, then content",
        [
            {"role": "assistant", "content": ""},
            {
                "reasoning_content": "Passage [{@jaws}] says Spielberg directed it; "
                "【{@benchley}】 is the novel."
            },
            {"content": None},
            Text("Jaws was directed by Steven Spielberg [{@jaws}]."),
        ],
        Expect(cites=JAWS_CITE, absent=("Passage",)),
    ),
    answer_case(
        "deepseek-r1-distill-llama-8b/answer-think-block",
        "DeepSeek-R1 distill, <think> in content",
        "<think>\nPassage [{@jaws}] says Spielberg directed it. 【{@benchley}】 is about the novel.\n"
        "</think>\n\nJaws was directed by Steven Spielberg [{@jaws}].",
        Expect(cites=JAWS_CITE, absent=("Passage", "think")),
    ),
    answer_case(
        "qwen2.5-7b-instruct-zh/answer-numbered-list",
        "Qwen2.5 in Chinese, a numbered list",
        "1. 《大白鲨》由史蒂文·斯皮尔伯格执导[{@dabaisha}]。\n"
        "2. 斯皮尔伯格出生于美国俄亥俄州辛辛那提[{@sbbg}]。",
        Expect(cites=(("执导", ("dabaisha",)), ("辛辛那提", ("sbbg",)))),
        question=Q_ZH_ONE,
    ),
    answer_case(
        "qwen2.5-7b-instruct-zh/answer-ascii-full-stop-after-chinese",
        "Qwen2.5 mixing '.' into Chinese",
        "《大白鲨》由史蒂文·斯皮尔伯格执导[{@dabaisha}].他出生于美国俄亥俄州辛辛那提[{@sbbg}].",
        Expect(cites=(("执导", ("dabaisha",)), ("辛辛那提", ("sbbg",)))),
        question=Q_ZH_ONE,
    ),
    answer_case(
        "qwen2.5-7b-instruct-zh/answer-markers-joined-by-fullwidth-comma",
        "Qwen2.5, '[1]，[2]。'",
        "史蒂文·斯皮尔伯格是执导《大白鲨》的美国导演[{@dabaisha}]，[{@sbbg}]。",
        Expect(cites=(("美国导演", ("dabaisha", "sbbg")),), absent=("，。", "， [", "导演，")),
        question=Q_ZH_ONE,
    ),
    answer_case(
        "qwen2.5-7b-instruct-zh/answer-according-to-marker",
        "Qwen2.5, '据[1]，...'",
        "据[{@dabaisha}]，《大白鲨》由史蒂文·斯皮尔伯格执导。",
        Expect(cites=(("据", ("dabaisha",)),), absent=("据，",)),
        question=Q_ZH_ONE,
    ),
    answer_case(
        "llama3.1-8b-instruct/answer-according-to-marker",
        "Llama 3.1, 'According to [1], ...'",
        "According to [{@jaws}], Jaws was directed by Steven Spielberg.",
        Expect(cites=(("According to", ("jaws",)),), absent=("According to,",)),
    ),
    answer_case(
        "mistral-7b-instruct/answer-source-label-in-parentheses",
        "Mistral 7B, '(Source: [1])'",
        "Jaws was directed by Steven Spielberg (Source: [{@jaws}]).",
        Expect(cites=JAWS_CITE, absent=("(Source:)", "()")),
    ),
    answer_case(
        "gpt-4o/answer-markers-in-parentheses",
        "GPT-4o class, '([1], [2])'",
        "Jaws, a film directed by Steven Spielberg, is based on the 1974 novel by Peter Benchley "
        "([{@jaws}], [{@benchley}]).",
        Expect(cites=(("novel by Peter Benchley", ("jaws", "benchley")),), absent=("(,)", "()")),
    ),
    answer_case(
        "llama3.1-8b-instruct/answer-footnote-definitions",
        "Llama 3.1, footnotes with definitions",
        "Jaws was directed by Steven Spielberg[^{@jaws}].\n\n[^{@jaws}]: Jaws (film)",
        Expect(cites=JAWS_CITE, absent=(": Jaws (film)",), prose=False),
    ),
    answer_case(
        "llama3-8b-instruct/answer-sources-line",
        "Llama 3 ending with a 'Sources:' line",
        "Jaws was directed by Steven Spielberg [{@jaws}].\n\nSources: [{@jaws}], [{@benchley}]",
        Expect(cites=JAWS_CITE, absent=("Sources:,", "Sources:\n"), prose=False),
    ),
    answer_case(
        "deepseek-v3/answer-over-citation",
        "DeepSeek V3 citing every passage it saw",
        "Jaws was directed by Steven Spielberg [{@jaws}][{@benchley}].",
        Expect(cites=JAWS_CITE, dropped=(("node", "unsupported", ""),)),
    ),
    answer_case(
        "llama3-8b-instruct/answer-wrong-passage-number",
        "Llama 3 8B citing the wrong passage",
        "Steven Spielberg was born in Cincinnati, Ohio [{@jaws}].",
        Expect(cites=(("Cincinnati, Ohio", ("spielberg",)),), dropped=(("node", "unsupported", ""),)),
        question=WHERE,
    ),
    answer_case(
        "gpt-4o/answer-abbreviated-month",
        "GPT-4o class abbreviating the month",
        "Steven Spielberg was born in Cincinnati, Ohio, on Dec. 18, 1946 [{@spielberg}].",
        Expect(cites=(("Dec. 18, 1946", ("spielberg",)),)),
        question=WHERE,
    ),
    answer_case(
        "llama3-8b-instruct/answer-bare-name",
        "Llama 3 8B answering in two words",
        "Steven Spielberg [{@jaws}].",
        Expect(cites=(("Steven Spielberg", ("jaws",)),), answer="Steven Spielberg [1]."),
    ),
    answer_case(
        "gpt-4o/answer-marker-after-subject",
        "GPT-4o class, a marker after the subject",
        "Steven Spielberg [{@jaws}] directed Jaws, which was released in June 1975.",
        Expect(
            cites=(("released in June 1975", ("jaws",)),),
            answer="Steven Spielberg directed Jaws, which was released in June 1975 [1].",
        ),
    ),
]

BORN_TWO = (("directed Jaws", ("jaws",)), ("Cincinnati, Ohio", ("spielberg",)))

WRITES: list[Case] = [
    write_case(
        "gpt-4o/write-bullets-and-bold-labels",
        "GPT-4o class, Markdown bullets",
        "**Steven Spielberg**, the director of Jaws, was born in Cincinnati, Ohio [{@jaws}][{@spielberg}]."
        "\n\n- **Director:** Steven Spielberg directed Jaws [{@jaws}]\n"
        "- **Birthplace:** Cincinnati, Ohio [{@spielberg}]",
        Expect(
            cites=(
                ("the director of Jaws", ("jaws", "spielberg")),
                ("Spielberg directed Jaws", ("jaws",)),
                ("**Birthplace:** Cincinnati, Ohio", ("spielberg",)),
            )
        ),
    ),
    write_case(
        "llama3.1-70b-instruct/write-headings-and-numbered-list",
        "Llama 3.1 70B, headings",
        "## Answer\n\nSteven Spielberg, who directed Jaws, was born in Cincinnati, Ohio "
        "[{@jaws}][{@spielberg}].\n\n### Details\n\n1. Jaws was directed by Steven Spielberg [{@jaws}].\n"
        "2. Spielberg was born on December 18, 1946 [{@spielberg}].",
        Expect(
            cites=(
                ("who directed Jaws", ("jaws", "spielberg")),
                ("directed by Steven", ("jaws",)),
                ("December 18, 1946", ("spielberg",)),
                ("## Answer", ()),
                ("### Details", ()),
            )
        ),
    ),
    write_case(
        "gpt-4o/write-table",
        "GPT-4o class, a Markdown table",
        "Mount Everest (8,849 metres) is higher than K2 (8,611 metres) [{@everest}][{@k2}].\n\n"
        "| Mountain | Elevation |\n| --- | --- |\n| Mount Everest | 8,849 metres [{@everest}] |\n"
        "| K2 | 8,611 metres [{@k2}] |",
        Expect(
            cites=(
                ("higher than K2", ("everest", "k2")),
                ("| Mount Everest | 8,849 metres", ("everest",)),
                ("| K2 | 8,611 metres", ("k2",)),
            ),
            contains=("| Mountain | Elevation |\n| --- | --- |\n",),
        ),
        question=Q_PEAKS,
    ),
    write_case(
        "deepseek-v3/write-code-block",
        "DeepSeek V3, a code block with brackets",
        "Mount Everest is higher. Its elevation is 8,849 metres [{@everest}], while K2 has an elevation "
        "of 8,611 metres [{@k2}].\n\n```python\nheights = [8849, 8611]  # metres\n"
        "print(heights[0] > heights[1])  # [1]\n```\n",
        Expect(
            cites=(("while K2", ("everest", "k2")),),
            contains=(
                "```python\nheights = [8849, 8611]  # metres\nprint(heights[0] > heights[1])  # [1]\n```",
            ),
        ),
        question=Q_PEAKS,
    ),
    write_case(
        "qwen2.5-7b-instruct-zh/write-chinese",
        "Qwen2.5 in Chinese, full-width punctuation",
        "《大白鲨》的导演是史蒂文·斯皮尔伯格[{@dabaisha}]。他于1946年12月18日出生于美国俄亥俄州辛辛那提[{@sbbg}]。",
        Expect(cites=(("导演是", ("dabaisha",)), ("辛辛那提", ("sbbg",)))),
        question=Q_ZH_BORN,
    ),
    write_case(
        "qwen2.5-72b-instruct-zh/write-lenticular",
        "Qwen2.5 72B in Chinese, 【n】",
        "《大白鲨》的导演史蒂文·斯皮尔伯格出生于美国俄亥俄州辛辛那提【{@dabaisha}】【{@sbbg}】。"
        "他还在1994年与人共同创立了梦工厂【{@sbbg}】。",
        Expect(cites=(("辛辛那提", ("dabaisha", "sbbg")), ("梦工厂", ("sbbg",)))),
        question=Q_ZH_BORN,
    ),
    write_case(
        "deepseek-v3/write-bold-inline",
        "DeepSeek V3, bold names",
        "The director of **Jaws**, **Steven Spielberg**, was born in **Cincinnati, Ohio**"
        "[{@jaws}][{@spielberg}].",
        Expect(cites=(("Cincinnati, Ohio**", ("jaws", "spielberg")),)),
    ),
    write_case(
        "llama3-8b-instruct/write-dangling-number",
        "Llama 3 citing a number no sub-answer has",
        "Steven Spielberg, who directed Jaws [{@jaws}], was born in Cincinnati, Ohio [{@spielberg}][7].",
        Expect(
            cites=(("Cincinnati, Ohio", ("jaws", "spielberg")),), dropped=(("answer", "dangling", "[7]"),)
        ),
    ),
    write_case(
        "mistral-7b-instruct/write-negated-claim",
        "Mistral 7B negating a sub-answer",
        "Steven Spielberg directed Jaws [{@jaws}]. He was not born in Cincinnati, Ohio [{@spielberg}].",
        Expect(
            cites=(("Spielberg directed Jaws", ("jaws",)), ("not born in Cincinnati", ())),
            dropped=(("answer", "unsupported", ""),),
        ),
    ),
    write_case(
        "llama3-8b-instruct/write-name-the-source-lacks",
        "Llama 3 adding a place no source names",
        "Steven Spielberg directed Jaws [{@jaws}]. He was born in Cincinnati, Ohio, and grew up in "
        "Phoenix, Arizona [{@spielberg}].",
        Expect(
            cites=(("Spielberg directed Jaws", ("jaws",)), ("Phoenix, Arizona", ())),
            dropped=(("answer", "unsupported", ""),),
        ),
    ),
    write_case(
        "gpt-4o/write-partial-non-answer",
        "GPT-4o class saying what is not known",
        "The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio [{@jaws}][{@spielberg}]. "
        "The sub-answers do not say in which hospital he was born [{@spielberg}].",
        Expect(cites=(*BORN_CITES, ("which hospital", ())), dropped=(("answer", "unsupported", ""),)),
    ),
    write_case(
        "internlm2.5-7b-chat-lmdeploy/write-double-bracket-range",
        "InternLM2.5, [[1-2]]",
        "The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio [[{@range:jaws,spielberg}]].",
        Expect(cites=BORN_CITES),
    ),
    write_case(
        "gpt-4o/write-markers-before-full-stop-no-space",
        "GPT-4o class, 'Ohio[2].'",
        "Jaws was directed by Steven Spielberg[{@jaws}]. He was born in Cincinnati, Ohio[{@spielberg}].",
        Expect(
            cites=(("directed by Steven Spielberg", ("jaws",)), ("Cincinnati, Ohio", ("spielberg",))),
            answer="Jaws was directed by Steven Spielberg [1]. He was born in Cincinnati, Ohio [2].",
        ),
    ),
    write_case(
        "qwen3-8b-vllm/write-every-reply-opens-inside-think",
        "Qwen3: every reply opens in <think>",
        "The director of Jaws, Steven Spielberg [{@jaws}], was born in Cincinnati, Ohio [{@spielberg}].",
        Expect(cites=BORN_CITES, absent=("combine", "think")),
        preamble="Okay, I'll combine what I know [1] and [2] into {one} reply.\n</think>\n\n",
    ),
    write_case(
        "gpt-4o/write-markers-joined-by-comma",
        "GPT-4o class, 'Ohio [1], [2].'",
        "The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio [{@jaws}], [{@spielberg}].",
        Expect(
            cites=BORN_CITES,
            answer="The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio [1][2].",
        ),
    ),
    write_case(
        "llama3.1-70b-instruct/write-markers-joined-by-and",
        "Llama 3.1 70B, 'Ohio [1] and [2].'",
        "The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio [{@jaws}] and [{@spielberg}].",
        Expect(cites=BORN_CITES, absent=("Ohio and.",)),
    ),
    write_case(
        "gpt-4o/write-markers-in-parentheses",
        "GPT-4o class, '([1], [2])'",
        "The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio ([{@jaws}], [{@spielberg}]).",
        Expect(cites=BORN_CITES, absent=("(,)", "()")),
    ),
    write_case(
        "qwen2.5-7b-instruct-zh/write-markers-joined-by-dunhao",
        "Qwen2.5 in Chinese, '[1]、[2]。'",
        "《大白鲨》的导演史蒂文·斯皮尔伯格出生于美国俄亥俄州辛辛那提[{@dabaisha}]、[{@sbbg}]。",
        Expect(
            cites=(("辛辛那提", ("dabaisha", "sbbg")),),
            answer="《大白鲨》的导演史蒂文·斯皮尔伯格出生于美国俄亥俄州辛辛那提 [1][2]。",
        ),
        question=Q_ZH_BORN,
    ),
    write_case(
        "llama3.1-8b-instruct/write-en-dash-range",
        "Llama 3.1, '[1–2]' with an en dash",
        "The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio [{@dash:jaws,spielberg}].",
        Expect(
            cites=BORN_CITES,
            answer="The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio [1][2].",
        ),
    ),
    write_case(
        "mistral-7b-instruct/write-source-prefix",
        "Mistral 7B, '[Source 1]'",
        "Jaws was directed by Steven Spielberg [Source {@jaws}]. He was born in Cincinnati, Ohio "
        "[Source {@spielberg}].",
        Expect(
            cites=(("directed by Steven Spielberg", ("jaws",)), ("Cincinnati, Ohio", ("spielberg",))),
            answer="Jaws was directed by Steven Spielberg [1]. He was born in Cincinnati, Ohio [2].",
        ),
    ),
]

STREAMS: list[Case] = [
    answer_case(
        "internlm2.5-7b-chat-lmdeploy/stream-one-character-pieces",
        "InternLM2.5, 1-char pieces",
        "Jaws was directed by Steven Spielberg[[{@jaws}]]. It is based on the 1974 novel by Peter "
        "Benchley.[[{@jaws}]][[{@benchley}]]",
        Expect(cites=(*JAWS_CITE, ("novel by Peter Benchley", ("jaws", "benchley"))), same_as_whole=True),
        split="chars",
    ),
    answer_case(
        "qwen2.5-7b-instruct-zh/stream-one-character-pieces",
        "Qwen2.5 in Chinese, 1-char pieces",
        "《大白鲨》由史蒂文·斯皮尔伯格执导【{@dabaisha}】。他出生于美国俄亥俄州辛辛那提。【{@sbbg}†来源】",
        Expect(cites=(("执导", ("dabaisha",)), ("辛辛那提", ("sbbg",))), same_as_whole=True),
        question=Q_ZH_ONE,
        split="chars",
    ),
    write_case(
        "gpt-4o/stream-random-pieces",
        "GPT-4o class, pieces cut at random",
        "The director of Jaws, Steven Spielberg [{@jaws}], was born in Cincinnati, Ohio.[{@spielberg}] "
        "He was born on December 18, 1946 [^{@spielberg}].\n\n"
        "- Director of Jaws: Steven Spielberg 【{@jaws}】",
        Expect(
            cites=(
                *BORN_CITES,
                ("December 18, 1946", ("spielberg",)),
                ("Director of Jaws: Steven Spielberg", ("jaws",)),
            ),
            same_as_whole=True,
        ),
        split="random:1",
    ),
    answer_case(
        "llama3.1-8b-instruct/stream-random-pieces-links",
        "Llama 3.1, linked citations, random cuts",
        "Jaws was directed by Steven Spielberg [{@jaws}](https://example.org/jaws). It is based on "
        "the 1974 novel by Peter Benchley [citation:{@benchley}].",
        Expect(
            cites=(*JAWS_CITE, ("novel by Peter Benchley", ("benchley",))),
            same_as_whole=True,
            absent=("example.org",),
        ),
        split="random:7",
    ),
    plan_case(
        "qwen2.5-7b-instruct-vllm/stream-plan-one-character-pieces",
        "Qwen2.5 on vLLM, 1-char pieces",
        f"```json\n{PRETTY_BORN}\n```",
        Expect(plan=P_BORN, cites=BORN_CITES, same_as_whole=True),
        split="chars",
    ),
    plan_case(
        "internlm2.5-7b-chat-lmdeploy/stream-plan-cut-by-length",
        "max_tokens hit inside the plan JSON",
        [Text(JSON_BORN[:70]), Chunk(finish_reason="length")],
        Expect(plan=(("q1", Q_BORN, ()),), fell_back=True, cites=BORN_CITES, ok=None),
    ),
    write_case(
        "vllm-openai/stream-usage-only-last-chunk",
        "vLLM / OpenAI with stream_options.include_usage",
        [Text(DEFAULT_WRITERS[Q_BORN]), Chunk(finish_reason="stop"), Chunk(choices=[], usage=USAGE)],
        Expect(cites=BORN_CITES),
    ),
    write_case(
        "azure-gpt-4o/stream-empty-choices-chunks",
        "Azure OpenAI: chunks with empty choices",
        [
            Chunk(
                data={
                    "id": "",
                    "object": "",
                    "created": 0,
                    "model": "",
                    "choices": [],
                    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
                }
            ),
            Text("The director of Jaws, Steven Spielberg [{@jaws}],"),
            Chunk(choices=[]),
            Text(" was born in Cincinnati, Ohio [{@spielberg}]."),
            Chunk(choices=[]),
            Chunk(finish_reason="stop"),
        ],
        Expect(cites=BORN_CITES),
    ),
    write_case(
        "internlm2.5-7b-chat-lmdeploy/stream-length-cut-mid-sentence",
        "max_tokens hit mid-sentence",
        [
            Text(
                "The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio "
                "[[{@jaws}]][[{@spielberg}]]. "
                "He was born on December"
            ),
            Chunk(finish_reason="length"),
        ],
        Expect(cites=BORN_CITES, contains=("He was born on December",), ok=False, errors=("answer", "llm")),
    ),
    write_case(
        "internlm2.5-7b-chat-lmdeploy/stream-length-cut-inside-marker",
        "max_tokens hit inside [[n]]",
        [
            Text("Steven Spielberg directed Jaws [[{@jaws}]]. He was born in Cincinnati, Ohio [["),
            Chunk(finish_reason="length"),
        ],
        Expect(
            cites=(("directed Jaws", ("jaws",)), ("Cincinnati, Ohio", ("spielberg",))),
            ok=False,
            errors=("answer", "llm"),
        ),
    ),
    answer_case(
        "qwen2.5-7b-instruct-ollama/stream-length-cut-searcher",
        "a searcher reply cut by max_tokens",
        [
            Text("Jaws was directed by Steven Spielberg [{@jaws}]. It is based on the 1974 novel by Peter"),
            Chunk(finish_reason="length"),
        ],
        Expect(
            cites=JAWS_CITE, contains=("based on the 1974 novel by Peter",), ok=False, errors=("node", "llm")
        ),
    ),
]

STREAMS = [replace(case, stage="stream") for case in STREAMS]  # the shape of the stream is under test

CASES: list[Case] = [*PLANS, *ANSWERS, *WRITES, *STREAMS]

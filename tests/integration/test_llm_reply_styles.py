"""Reply styles of real models and servers, replayed by a real server on 127.0.0.1 to the OpenAI backend."""

from __future__ import annotations

from typing import Any

import pytest

from mindsearch import MindSearch, Settings
from mindsearch._graph import PlanAction
from mindsearch.llm.base import LLMError, Message, extract_json
from mindsearch.llm.openai import OpenAIModel
from mindsearch.testing import (
    END,
    Chunk,
    FakeOpenAIServer,
    MemoryEngine,
    Piece,
    doc_hit,
    kind_of_body,
    plan_json,
    tool_call_delta,
)

HELLO = [Message("user", "hello")]
PLAN = '{"add": [], "finish": true}'
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


async def reply_of(pieces: list[Piece], **server_options: Any) -> str:
    async with FakeOpenAIServer(lambda body: pieces, **server_options) as server:
        model = OpenAIModel(f"{server.url}/v1", model="m", backoff=0.01)
        try:
            return await model.complete(HELLO, schema=PlanAction)
        finally:
            await model.aclose()


STYLES: list[tuple[str, list[Piece], str]] = [
    (
        "deepseek-r1 on vLLM: reasoning_content deltas, then content",
        [{"role": "assistant", "content": ""}, {"reasoning_content": "The user wants"}, {"content": PLAN}],
        PLAN,
    ),
    (
        "qwen3 on newer vLLM: reasoning deltas, then content",
        [{"reasoning": "Let me think about {x}.", "content": None}, {"content": PLAN}],
        PLAN,
    ),
    (
        "reasoning only, content never comes: an empty reply, not the reasoning",
        [{"reasoning_content": PLAN}, Chunk(finish_reason="stop")],
        "",
    ),
    (
        "the JSON as a tool call, arguments in parts",
        [
            {"role": "assistant", "content": None},
            tool_call_delta('{"add": [], ', name="PlanAction", call_id="call_0"),
            tool_call_delta('"finish": true}'),
            Chunk(finish_reason="tool_calls"),
        ],
        PLAN,
    ),
    (
        "a tool call after blank content (some Qwen templates)",
        ["\n\n", tool_call_delta(PLAN, name="PlanAction", call_id="c1")],
        "\n\n" + PLAN,
    ),
    (
        "content and a tool call: the content is the reply",
        [PLAN, tool_call_delta('{"other": 1}', name="x", call_id="c1")],
        PLAN,
    ),
    (
        "the older function_call delta",
        [{"function_call": {"name": "PlanAction", "arguments": PLAN}}],
        PLAN,
    ),
    (
        "vLLM/OpenAI stream_options: a usage-only last chunk with empty choices",
        ['{"add": [], ', '"finish": true}', Chunk(finish_reason="stop"), Chunk(choices=[], usage=USAGE)],
        PLAN,
    ),
    (
        "Azure: a first chunk with empty choices (prompt filter results)",
        [Chunk(data={"choices": [], "prompt_filter_results": []}), PLAN, Chunk(finish_reason="stop")],
        PLAN,
    ),
    (
        "keep-alive comments and event lines between chunks",
        [Chunk(raw=": keep-alive"), Chunk(raw="event: message\ndata: " + '{"choices": []}'), PLAN],
        PLAN,
    ),
    (
        "a finish_reason but no [DONE] (the server just closes)",
        [PLAN, Chunk(finish_reason="stop"), END],
        PLAN,
    ),
    (
        "qwen3 template put <think> in the prompt: the reply opens inside it",
        ["The user asks for a plan. ", "I will finish.</th", "ink>\n\n", PLAN],
        "\n\n" + PLAN,
    ),
    ("a <think> block before the JSON", ["<think>hmm {", "}</think>", PLAN], PLAN),
]


@pytest.mark.parametrize(("pieces", "expected"), [s[1:] for s in STYLES], ids=[s[0] for s in STYLES])
async def test_reply_styles_give_the_answer_text(pieces: list[Piece], expected: str) -> None:
    assert await reply_of(pieces) == expected


async def test_every_style_that_answers_yields_a_valid_plan() -> None:
    for name, pieces, expected in STYLES:
        if expected:
            reply = await reply_of(pieces)
            assert PlanAction.model_validate(extract_json(reply)) == PlanAction(finish=True), name


async def test_a_stream_that_ends_with_neither_done_nor_finish_reason_is_cut_off() -> None:
    with pytest.raises(LLMError, match="cut off"):
        await reply_of(["partial", END])


NON_STREAMING: list[tuple[str, list[Piece], str]] = [
    ("plain content", [PLAN], PLAN),
    ("content null, the JSON in tool_calls", [tool_call_delta(PLAN, name="PlanAction", call_id="c")], PLAN),
    ("reasoning_content beside the content", [{"reasoning_content": "why"}, PLAN], PLAN),
    ("reasoning_content and no content", [{"reasoning_content": PLAN}], ""),
]


@pytest.mark.parametrize(
    ("pieces", "expected"), [s[1:] for s in NON_STREAMING], ids=[s[0] for s in NON_STREAMING]
)
async def test_servers_that_ignore_stream_are_read_in_every_style(pieces: list[Piece], expected: str) -> None:
    assert await reply_of(pieces, streaming=False) == expected


async def test_a_model_whose_replies_open_in_think_holds_back_streamed_reasoning() -> None:
    reply = ["Reasoning first. ", "More reasoning.", "</think>", "\n\nThe answer ", "is 42."]
    async with FakeOpenAIServer(lambda body: reply) as server:
        model = OpenAIModel(f"{server.url}/v1", model="m")
        first = [piece async for piece in model.stream(HELLO)]  # not yet known: streamed as it comes
        assert await model.complete(HELLO) == "\n\nThe answer is 42."  # a whole reply: held, learned
        later = [piece async for piece in model.stream(HELLO)]
        await model.aclose()
    assert "".join(first).endswith("\n\nThe answer is 42.")
    assert "".join(later) == "\n\nThe answer is 42." and later[-1] == "is 42."  # still streamed after


DOCS = [
    doc_hit("Jaws (film)", "Jaws is a 1975 American thriller film directed by Steven Spielberg."),
    doc_hit("Steven Spielberg", "Steven Spielberg was born in Cincinnati, Ohio, in 1946."),
]


def reasoning_model(body: dict[str, Any]) -> Any:
    """A DeepSeek-R1-like server: reasoning deltas, the plan as a tool call, fenced queries, bare </think>."""
    kind = kind_of_body(body)
    thinking = {"reasoning_content": "Let me think step by step about {the question}."}
    text = "\n".join(m["content"] for m in body["messages"])
    if kind == "plan":
        plan = plan_json(("a", "Who directed Jaws?", []), ("b", "Where was Steven Spielberg born?", []))
        return [thinking, tool_call_delta(plan, name="PlanAction", call_id="c0"), Chunk(finish_reason="stop")]
    if kind == "queries":
        return [thinking, "```json\n", '{"queries": ["jaws"]}', "\n```"]
    if kind == "answer" and "Sub-question: Who directed Jaws?" in text:
        return [thinking, "Jaws was directed ", "by Steven Spielberg [1]."]
    if kind == "answer":
        return [thinking, "Steven Spielberg was born in Cincinnati, Ohio [1]."]
    return ["I should cite both.</think>", "Jaws's director Steven Spielberg [1] ", "was born in Ohio [2]."]


async def test_a_reasoning_model_with_tool_call_plans_answers_through_the_whole_pipeline(
    settings: Settings,
) -> None:
    async with FakeOpenAIServer(reasoning_model) as server:
        settings.llm, settings.base_url, settings.model = "openai", f"{server.url}/v1", "m"
        model = OpenAIModel.from_settings(settings)
        async with MindSearch(settings, model=model, engines=[MemoryEngine(DOCS)]) as engine:
            events = [e async for e in engine.stream("Who directed Jaws?")]
    assert [kind_of_body(r.body) for r in server.requests].count("write") == 1
    done = events[-1]
    assert done.type == "done" and done.ok
    assert done.answer.startswith("Jaws's director Steven Spielberg") and "Ohio" in done.answer
    node_answers = " ".join(e.answer for e in events if e.type == "node_done")
    assert "Cincinnati" in node_answers
    assert "step by step" not in node_answers + done.answer and "cite both" not in done.answer
    assert not [e for e in events if e.type == "error"]

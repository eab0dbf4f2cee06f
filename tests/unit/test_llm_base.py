from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from mindsearch.llm.base import (
    ChatModel,
    Message,
    ModelRequest,
    extract_json,
    is_context_overflow,
    strip_think,
)
from mindsearch.llm.openai import FormatLadder
from mindsearch.testing import ScriptedModel


async def pieces(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


async def collect(stream: AsyncIterator[str]) -> str:
    return "".join([p async for p in stream])


async def test_think_spans_are_removed_even_when_tags_are_split() -> None:
    text = await collect(
        strip_think(pieces("<thi", "nk>secret plan</th", "ink>Hello", " <think>x</think>world"))
    )
    assert text == "Hello world"


async def test_text_without_think_passes_unchanged() -> None:
    assert await collect(strip_think(pieces("a < b", " and <t", "able>"))) == "a < b and <table>"


async def test_models_never_emit_think_text() -> None:
    model = ScriptedModel(lambda request: ["<think>hmm", "</think>", "answer"])
    assert await model.complete([Message("user", "q")]) == "answer"


PLAN = {"add": [], "finish": True}
QUESTION = {"add": [{"id": "a", "question": "谁导演了《大白鲨》？", "depends_on": []}], "finish": False}

Q_PY = "{'add': [{'id': 'a', 'question': '谁导演了《大白鲨》？', 'depends_on': []}], 'finish': False}"
Q_TRAILING = (
    '{"add": [\n  {"id": "a", "question": "谁导演了《大白鲨》？", "depends_on": [],},\n], "finish": false}'
)
NOTE = "时间：1975年，导演：斯皮尔伯格"

# (what the model replied, what extract_json must read), in the styles real models reply
REPLIES: list[tuple[str, object]] = [
    ('{"add": [], "finish": true}', PLAN),
    ('  \n{"add": [], "finish": true}\n', PLAN),
    ('```json\n{"add": [], "finish": true}\n```', PLAN),
    ('```JSON\n{"add": [], "finish": true}\n```', PLAN),
    ('```\n{"add": [], "finish": true}\n```', PLAN),
    ('Here is the plan:\n```json\n{"add": [], "finish": true}\n', PLAN),  # the last fence never closed
    ('```json{"add": [], "finish": true}```', PLAN),
    ('{"add": [], "finish": true}\n\nThis plan is complete, no more searches are needed.', PLAN),
    ('Sure! Here is the plan: {"add": [], "finish": true} Hope it helps.', PLAN),
    ('The format is {add, finish}. My answer: {"add": [], "finish": true}', PLAN),
    ('<think>The user wants {"add": [1]}. Done.</think>\n\n{"add": [], "finish": true}', PLAN),
    ('the user asks me to plan {x}.\n</think>\n{"add": [], "finish": true}', PLAN),  # opened in the prompt
    ("{'add': [], 'finish': True}", PLAN),
    (Q_PY, QUESTION),
    ('{"add": [], "finish": true,}', PLAN),
    (Q_TRAILING, QUESTION),
    ('{"add": [], "finish": True, "note": None}', {**PLAN, "note": None}),
    ('{\n  "add": [], // nothing to add\n  "finish": true /* done */\n}', PLAN),
    ('[{"id": "a", "question": "q", "depends_on": []}]', [{"id": "a", "question": "q", "depends_on": []}]),
    ('The queries: ["jaws director", "jaws 1975"]', ["jaws director", "jaws 1975"]),
    ('计划如下：{"add"：[]，"finish"：true}。', PLAN),
    ('{"note": "' + NOTE + '", "finish": true}', {"note": NOTE, "finish": True}),
    ("{“add”：[]，“finish”：true}", PLAN),
    ('{"add": [], "finish": true}\n{"add": [{"id": "b"}], "finish": false}', PLAN),
    ('{"add": [}, oops} then {"add": [], "finish": true}', PLAN),
    ("As cited in [1], the plan: {'add': [], 'finish': True}", PLAN),
    ("{add: [], finish: true}", PLAN),
    (json.dumps(json.dumps(PLAN)), PLAN),  # the JSON sent as a JSON string
    (
        r"""{'note': 'it\'s "quoted" // no comment', 'finish': True}""",
        {"note": 'it\'s "quoted" // no comment', "finish": True},
    ),
    ('{"note": "a } and a { in text", "finish": true}', {"note": "a } and a { in text", "finish": True}),
    (
        '{"url": "http://example.test/a#b", "finish": true}',
        {"url": "http://example.test/a#b", "finish": True},
    ),
    ('{"note": "line one\nline two", "finish": true}', {"note": "line one\nline two", "finish": True}),
]


@pytest.mark.parametrize(("reply", "expected"), REPLIES)
def test_extract_json_reads_the_object_in_every_reply_style(reply: str, expected: object) -> None:
    assert extract_json(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        "__import__('os').system('echo pwned')",
        "{'finish': __import__('os').system('echo pwned')}",
        "I cannot help with that.",
        "True",
        "See [1] and [2].",
        '{"add": [{"id": "a", "question": "cut off by max_tok',
        '<think>I will answer {"finish": true}',  # reasoning that never ended is not the reply
        "",
    ],
)
def test_extract_json_refuses_what_holds_no_json_without_evaluating_it(reply: str) -> None:
    with pytest.raises(ValueError, match="not JSON"):
        extract_json(reply)


def test_extract_json_takes_long_replies_full_of_braces_quickly() -> None:
    reply = "{ " * 5000 + '{"finish": true}'
    started = time.perf_counter()
    with pytest.raises(ValueError):
        extract_json(reply)
    assert time.perf_counter() - started < 1.0


async def test_a_reply_opening_inside_a_think_block_loses_everything_before_its_close() -> None:
    held = await collect(strip_think(pieces("the user wants ", "x</thi", "nk>\n\nAnswer."), hold=True))
    assert held == "\n\nAnswer."


async def test_unheld_stream_drops_what_is_left_of_the_reasoning_and_reports_it() -> None:
    seen: list[bool] = []
    out = [
        p
        async for p in strip_think(
            pieces("reasoning", " more</think>", "Answer"), on_bare_close=lambda: seen.append(True)
        )
    ]
    assert out == ["reasoning", "Answer"] and seen == [True]


async def test_a_stray_close_tag_after_the_answer_began_drops_only_the_tag() -> None:
    assert await collect(strip_think(pieces("<think>a</think>B", "</think>C"), hold=True)) == "BC"


async def test_an_unclosed_think_block_leaves_an_empty_reply() -> None:
    assert await collect(strip_think(pieces("<think>still reasoning when max_tokens", " ran out"))) == ""


async def test_a_model_learns_its_replies_open_in_think_and_then_holds_its_streams() -> None:
    model = ScriptedModel(lambda request: ["I think", " hard.</think>", "Answer", " text."])
    first = [p async for p in model.stream([Message("user", "q")])]
    assert first == ["I think", "Answer", " text."]  # streamed before the bare </think> was seen
    assert model.opens_in_think
    assert [p async for p in model.stream([Message("user", "q")])] == ["Answer", " text."]


async def test_complete_never_returns_reasoning_even_before_learning() -> None:
    model = ScriptedModel(lambda request: ["I think", " hard.</think>", "Answer."])
    assert await model.complete([Message("user", "q")]) == "Answer."


class WaitingModel(ChatModel):
    """Sends its first piece, then waits to be released before its second."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def _stream(self, request: ModelRequest) -> AsyncIterator[str]:
        yield "First piece. "
        await asyncio.wait_for(self.release.wait(), 2)
        yield "Second."


async def test_a_plain_model_streams_each_piece_as_soon_as_it_comes() -> None:
    model = WaitingModel()
    stream = model.stream([Message("user", "q")])
    assert await asyncio.wait_for(stream.__anext__(), 1) == "First piece. "
    model.release.set()
    assert [p async for p in stream] == ["Second."]


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
        "'max_tokens' is too large: 8000. This model's maximum context length is 4096 tokens.",
        "Your input is over the limit. (invalid_request_error, context_length_exceeded)",
        "request (4476 tokens) exceeds the available context size (4096 tokens)",
        "exceed_context_size_error",
        "Requested tokens (5000) exceed context window of 4096",
        "The request exceeds the model context length.",
        "The decoder prompt (length 5000) is longer than the maximum model length of 4096.",
        "The input (5000 tokens) is longer than the model's context length (4096 tokens).",
        "Input prompt (5000 tokens) is too long and exceeds limit of 4096",
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096.",
        "prompt is too long: 210000 tokens > 200000 maximum",
        "the input length exceeds the context length",
    ],
)
def test_context_overflow_is_recognised_in_every_server_wording(message: str) -> None:
    assert is_context_overflow(message)


@pytest.mark.parametrize(
    "message",
    [
        "response_format type json_schema is not supported",
        "temperature must be <= 2",
        "max_tokens must be at least 1",
        "Invalid 'messages[0].role': expected one of system, user, assistant",
        "rate limit exceeded",
    ],
)
def test_other_errors_are_not_context_overflow(message: str) -> None:
    assert not is_context_overflow(message)


def test_a_format_ladder_moves_one_step_per_refused_format_and_never_past_the_last() -> None:
    ladder = FormatLadder(("json_schema", "json_object", "none"))
    assert [ladder.refused("json_schema") for _ in range(5)] == ["json_object"] * 5
    assert ladder.current == "json_object"
    assert ladder.refused("json_object") == "none" and ladder.current == "none"
    assert ladder.refused("json_schema") == "json_object"  # a late refusal: its call goes on one step
    assert ladder.current == "none"  # and what was learned does not move back


def test_a_format_ladder_is_safe_from_many_threads() -> None:
    ladder = FormatLadder(("json_schema", "json_object", "none"))
    with ThreadPoolExecutor(8) as pool:
        retries = list(pool.map(lambda _: ladder.refused("json_schema"), range(200)))
    assert set(retries) == {"json_object"} and ladder.current == "json_object"

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mindsearch.llm.base import Message, extract_json, strip_think
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


@pytest.mark.parametrize(
    "reply",
    [
        '{"finish": true}',
        '```json\n{"finish": true}\n```',
        'Here is the plan: {"finish": true} hope it helps',
        '{"finish": true}\n{"other": 1}',
    ],
)
def test_extract_json_finds_the_object(reply: str) -> None:
    assert extract_json(reply) == {"finish": True}


def test_extract_json_refuses_non_json_without_evaluating_it() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        extract_json("__import__('os').system('echo pwned')")

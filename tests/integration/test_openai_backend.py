"""The OpenAI-compatible backend against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from mindsearch import MindSearch, Settings
from mindsearch import events as ev
from mindsearch.graph import PlanAction
from mindsearch.llm.base import LLMError, Message
from mindsearch.llm.openai import OpenAIModel
from mindsearch.testing import CUT, FakeOpenAIServer, MemoryEngine, doc_hit, kind_of_body, plan_json

HELLO = [Message("user", "hello")]


def model_for(server: FakeOpenAIServer, **kwargs: Any) -> OpenAIModel:
    return OpenAIModel(f"{server.url}/v1", backoff=0.01, **kwargs)


async def test_streams_text_pieces_and_sends_key_model_and_limits() -> None:
    async with FakeOpenAIServer(lambda body: ["Hel", "lo", " world"]) as server:
        model = model_for(server, api_key="sk-test", model="m1")
        pieces = [p async for p in model.stream(HELLO, stop=["\n\n"], max_tokens=33)]
        await model.aclose()
    assert pieces == ["Hel", "lo", " world"]
    sent = server.requests[0]
    assert sent.headers["Authorization"] == "Bearer sk-test"
    assert sent.body["model"] == "m1" and sent.body["stream"] is True
    assert sent.body["stop"] == ["\n\n"] and sent.body["max_tokens"] == 33


async def test_model_name_is_asked_from_the_server_when_unset() -> None:
    async with FakeOpenAIServer(lambda body: "ok", model="internlm2_5-7b-chat") as server:
        model = model_for(server)
        assert await model.complete(HELLO) == "ok"
        await model.aclose()
    assert server.requests[0].body["model"] == "internlm2_5-7b-chat"


async def test_structured_output_sends_the_json_schema() -> None:
    async with FakeOpenAIServer(lambda body: '{"add": [], "finish": true}') as server:
        model = model_for(server, model="m")
        await model.complete(HELLO, schema=PlanAction)
        await model.aclose()
    fmt = server.requests[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "PlanAction"
    assert "add" in fmt["json_schema"]["schema"]["properties"]


async def test_server_refusing_json_schema_is_asked_with_json_object_then_nothing() -> None:
    def handler(body: dict[str, Any]) -> Any:
        kind = (body.get("response_format") or {}).get("type")
        return 400 if kind in ("json_schema", "json_object") else '{"finish": true}'

    async with FakeOpenAIServer(handler) as server:
        model = model_for(server, model="m")
        assert await model.complete(HELLO, schema=PlanAction) == '{"finish": true}'
        await model.complete(HELLO, schema=PlanAction)  # learned: goes straight to no format
        await model.aclose()
    kinds = [(r.body.get("response_format") or {}).get("type") for r in server.requests]
    assert kinds == ["json_schema", "json_object", None, None]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_retries_transient_errors_with_backoff(status: int) -> None:
    replies = iter([status, status, "fine"])
    async with FakeOpenAIServer(lambda body: next(replies)) as server:
        model = model_for(server, model="m", retries=3)
        assert await model.complete(HELLO) == "fine"
        await model.aclose()
    assert len(server.requests) == 3


async def test_gives_up_after_retries_with_a_clear_error() -> None:
    async with FakeOpenAIServer(lambda body: 500) as server:
        model = model_for(server, model="m", retries=2)
        with pytest.raises(LLMError, match="HTTP 500"):
            await model.complete(HELLO)
        await model.aclose()
    assert len(server.requests) == 3


async def test_unreachable_server_error_says_how_to_start_one() -> None:
    model = OpenAIModel("http://127.0.0.1:9/v1", model="m", retries=1, backoff=0.01)
    with pytest.raises(LLMError, match="lmdeploy serve api_server"):
        await model.complete(HELLO)
    await model.aclose()


async def test_reasoning_is_removed_from_the_stream() -> None:
    async with FakeOpenAIServer(lambda body: ["<think>", "secret", "</think>", "Answer."]) as server:
        model = model_for(server, model="m")
        assert await model.complete(HELLO) == "Answer."
        await model.aclose()


async def test_non_streaming_server_reply_is_read() -> None:
    async with FakeOpenAIServer(lambda body: "whole reply") as server:
        model = model_for(server, model="m")
        session = model.session()
        async with session.post(
            f"{server.url}/v1/chat/completions", json={"messages": [], "stream": False}
        ) as r:
            data = await r.json()
        await model.aclose()
    assert data["choices"][0]["message"]["content"] == "whole reply"


DOCS = [
    doc_hit("Jaws (film)", "Jaws is a 1975 American thriller film directed by Steven Spielberg."),
    doc_hit("Steven Spielberg", "Steven Spielberg was born in Cincinnati, Ohio, in 1946."),
]


def diamond_server_handler(body: dict[str, Any]) -> Any:
    kind = kind_of_body(body)
    text = "\n".join(m["content"] for m in body["messages"])
    if kind == "plan":
        return plan_json(
            ("a", "Who directed Jaws?", []),
            ("b", "Where was Steven Spielberg born?", []),
            ("c", "Where was the director of Jaws born?", ["a", "b"]),
        )
    if kind == "queries":
        return '{"queries": ["jaws"]}'
    if kind == "answer":
        if "Sub-question: Who directed Jaws?" in text:
            return ["Jaws was directed ", "by Steven Spielberg [1]."]
        if "Sub-question: Where was Steven Spielberg born?" in text:
            return ["Steven Spielberg was born ", "in Cincinnati, Ohio [1]."]
        return "The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio [1][2]."
    return ["The director of Jaws, Steven Spielberg [1], ", "was born in Cincinnati, Ohio [2]."]


async def test_diamond_through_a_real_server_overlaps_a_and_b_and_feeds_both_to_c(settings: Settings) -> None:
    async with FakeOpenAIServer(diamond_server_handler, piece_delay=0.1) as server:
        settings.llm, settings.base_url, settings.model = "openai", f"{server.url}/v1", "m"
        from mindsearch.plugins import _openai

        async with MindSearch(settings, model=_openai(settings), engines=[MemoryEngine(DOCS)]) as engine:
            events = [e async for e in engine.stream("Where was the director of Jaws born?")]
    answers = [r for r in server.requests if kind_of_body(r.body) == "answer"]
    a = next(r for r in answers if "Sub-question: Who directed Jaws?" in r.prompt)
    b = next(r for r in answers if "Sub-question: Where was Steven Spielberg born?" in r.prompt)
    c = next(r for r in answers if "Sub-question: Where was the director of Jaws born?" in r.prompt)
    assert a.started < b.ended and b.started < a.ended, "the requests of a and b must overlap in time"
    assert c.started >= max(a.ended, b.ended)
    assert "Jaws was directed by Steven Spielberg" in c.prompt
    assert "Steven Spielberg was born in Cincinnati, Ohio" in c.prompt
    done = events[-1]
    assert isinstance(done, ev.Done) and done.ok
    assert done.answer == "The director of Jaws, Steven Spielberg, was born in Cincinnati, Ohio [1][2]."
    assert [r.title for r in done.references] == ["Jaws (film)", "Steven Spielberg"]


async def test_stream_cut_mid_answer_fails_the_node_not_the_run(settings: Settings) -> None:
    async def handler(body: dict[str, Any]) -> Any:
        kind = kind_of_body(body)
        if kind == "plan":
            return plan_json(("a", "Who directed Jaws?", []), ("b", "Where was Steven Spielberg born?", []))
        if kind == "answer" and "Spielberg born" in json.dumps(body):
            return ["Steven Spielberg was", CUT]  # the server drops the connection mid-answer
        return diamond_server_handler(body)

    async with FakeOpenAIServer(handler) as server:
        settings.llm, settings.base_url, settings.model, settings.llm_retries = (
            "openai",
            f"{server.url}/v1",
            "m",
            0,
        )
        model = OpenAIModel.from_settings(settings)
        async with MindSearch(settings, model=model, engines=[MemoryEngine(DOCS)]) as engine:
            events = [e async for e in engine.stream("Where was the director of Jaws born?")]
    done_events = {e.node_id: e for e in events if e.type == "node_done"}
    assert done_events["a"].ok and not done_events["b"].ok
    assert "cut off" in (done_events["b"].error or "")
    assert events[-1].ok and "Spielberg" in events[-1].answer
    await asyncio.sleep(0)


async def test_stream_cut_is_an_error_not_a_short_answer() -> None:
    async with FakeOpenAIServer(lambda body: ["partial ", CUT]) as server:
        model = model_for(server, model="m", retries=0)
        with pytest.raises(LLMError, match="cut off"):
            await model.complete(HELLO)
        await model.aclose()

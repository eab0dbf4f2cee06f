"""The OpenAI-compatible backend against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from mindsearch import MindSearch, Settings
from mindsearch import events as ev
from mindsearch._graph import PlanAction
from mindsearch.llm.base import ContextLengthError, LLMError, Message
from mindsearch.llm.openai import OpenAIModel
from mindsearch.testing import (
    CUT,
    Chunk,
    FakeOpenAIServer,
    HttpError,
    MemoryEngine,
    doc_hit,
    kind_of_body,
    plan_json,
)

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
        refusal = (400, f"response_format type {kind!r} is not supported by this server")
        return refusal if kind in ("json_schema", "json_object") else '{"finish": true}'

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
    # the run goes on and answers from node a, but an answer missing node b is not complete
    assert not events[-1].ok and "Spielberg" in events[-1].answer
    await asyncio.sleep(0)


async def test_stream_cut_is_an_error_not_a_short_answer() -> None:
    async with FakeOpenAIServer(lambda body: ["partial ", CUT]) as server:
        model = model_for(server, model="m", retries=0)
        with pytest.raises(LLMError, match="cut off"):
            await model.complete(HELLO)
        await model.aclose()


# -- structured-output negotiation and errors --------------------------------------------------------

PLAN = '{"add": [], "finish": true}'
CONTEXT_ERRORS = [
    HttpError(400, "This model's maximum context length is 4096 tokens. However, you requested 5120 tokens."),
    HttpError(
        400,
        "Your input exceeds the context window of this model. Please adjust your input and try again.",
        type="invalid_request_error",
        code="context_length_exceeded",
        param="messages",
    ),
    HttpError(400, "request (4476 tokens) exceeds the available context size (4096 tokens)"),
    HttpError(400, "The request exceeds the model context length.", code="context_length_exceeded"),
    HttpError(400, "The input (5000 tokens) is longer than the model's context length (4096 tokens)."),
    HttpError(422, "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096."),
    HttpError(413, body="<html><body>413 Request Entity Too Large</body></html>"),
]


def format_of(body: dict[str, Any]) -> str | None:
    return (body.get("response_format") or {}).get("type")


@pytest.mark.parametrize("error", CONTEXT_ERRORS, ids=lambda e: e.message[:30] or str(e.status))
async def test_prompt_too_long_raises_context_length_error_and_keeps_the_format(error: HttpError) -> None:
    replies = iter([error, PLAN])
    async with FakeOpenAIServer(lambda body: next(replies)) as server:
        model = model_for(server, model="m")
        with pytest.raises(ContextLengthError):
            await model.complete(HELLO, schema=PlanAction)
        assert await model.complete(HELLO, schema=PlanAction) == PLAN
        await model.aclose()
    assert [format_of(r.body) for r in server.requests] == ["json_schema", "json_schema"]


async def test_context_length_error_is_an_llm_error_for_callers_that_do_not_trim() -> None:
    async with FakeOpenAIServer(lambda body: CONTEXT_ERRORS[0]) as server:
        model = model_for(server, model="m")
        with pytest.raises(LLMError, match="too long for m's context"):
            await model.complete(HELLO)
        await model.aclose()
    assert len(server.requests) == 1  # not retried: the same prompt cannot fit the next time


async def test_other_400_fails_that_call_alone_with_a_short_one_line_message() -> None:
    message = "Invalid 'temperature':\nmust be in [0, 2]\n" + "detail " * 300
    replies = iter([HttpError(400, message), PLAN])
    async with FakeOpenAIServer(lambda body: next(replies)) as server:
        model = model_for(server, model="m")
        with pytest.raises(LLMError) as info:
            await model.complete(HELLO, schema=PlanAction)
        assert await model.complete(HELLO, schema=PlanAction) == PLAN
        await model.aclose()
    error = str(info.value)
    assert not isinstance(info.value, ContextLengthError)
    assert "HTTP 400" in error and "Invalid 'temperature': must be in [0, 2]" in error
    assert "\n" not in error and len(error) < 500
    assert [format_of(r.body) for r in server.requests] == ["json_schema", "json_schema"]


def gate(count: int) -> tuple[asyncio.Event, list[int]]:
    """An event set once ``count`` requests have reached it, so their replies go out together."""
    return asyncio.Event(), [count]


async def arrive(event: asyncio.Event, left: list[int]) -> None:
    left[0] -= 1
    if left[0] <= 0:
        event.set()
    await asyncio.wait_for(event.wait(), 5)


async def concurrent_calls(server: FakeOpenAIServer, count: int) -> list[str]:
    model = model_for(server, model="m")
    calls = [model.complete([Message("user", f"call {n}")], schema=PlanAction) for n in range(count)]
    replies = await asyncio.gather(*calls)
    await model.aclose()
    return replies


def formats_per_call(server: FakeOpenAIServer) -> dict[str, list[str | None]]:
    calls: dict[str, list[str | None]] = {}
    for record in server.requests:
        calls.setdefault(record.prompt, []).append(format_of(record.body))
    return calls


async def test_concurrent_refusals_move_the_format_one_step_and_every_call_succeeds() -> None:
    schema_gate = gate(4)

    async def handler(body: dict[str, Any]) -> Any:
        if format_of(body) == "json_schema":
            await arrive(*schema_gate)  # all four are refused at once
            return 400, "json_schema response_format is not supported"
        return PLAN

    async with FakeOpenAIServer(handler) as server:
        assert await concurrent_calls(server, 4) == [PLAN] * 4
        model = model_for(server, model="m")
        assert model.format_ladder("m").current == "json_object"
        await model.complete(HELLO, schema=PlanAction)  # a new call starts with what was learned
        await model.aclose()
    per_call = formats_per_call(server)
    assert all(per_call[f"call {n}"] == ["json_schema", "json_object"] for n in range(4))
    assert per_call["hello"] == ["json_object"]


async def test_concurrent_refusals_of_every_format_stop_at_no_format() -> None:
    gates = {"json_schema": gate(4), "json_object": gate(4)}

    async def handler(body: dict[str, Any]) -> Any:
        kind = format_of(body)
        if kind in gates:
            await arrive(*gates[kind])
            return HttpError(400, f"Unsupported response_format type: {kind}")
        return PLAN

    async with FakeOpenAIServer(handler) as server:
        assert await concurrent_calls(server, 4) == [PLAN] * 4
        assert model_for(server).format_ladder("m").current == "none"
    per_call = formats_per_call(server)
    assert all(formats == ["json_schema", "json_object", None] for formats in per_call.values())


async def test_a_refused_call_retries_with_the_format_after_its_own_not_the_shared_one() -> None:
    others_done = asyncio.Event()

    async def handler(body: dict[str, Any]) -> Any:
        kind = format_of(body)
        if kind is None:
            if "second" in json.dumps(body):
                others_done.set()
            return PLAN
        if "first" in json.dumps(body) and kind == "json_schema":
            await asyncio.wait_for(others_done.wait(), 5)  # refused only after "second" learned both
        return HttpError(400, f"{kind} is not a supported response_format")

    async with FakeOpenAIServer(handler) as server:
        model = model_for(server, model="m")
        first = asyncio.create_task(model.complete([Message("user", "first")], schema=PlanAction))
        await asyncio.sleep(0.05)
        assert await model.complete([Message("user", "second")], schema=PlanAction) == PLAN
        assert await first == PLAN
        await model.aclose()
    per_call = formats_per_call(server)
    assert per_call["second"] == ["json_schema", "json_object", None]
    assert per_call["first"] == ["json_schema", "json_object", None]


async def test_what_is_learned_is_per_server_and_model() -> None:
    def refusing(body: dict[str, Any]) -> Any:
        return (400, "response_format json_schema unsupported") if format_of(body) == "json_schema" else PLAN

    async with FakeOpenAIServer(refusing) as picky, FakeOpenAIServer(lambda body: PLAN) as other:
        learner = model_for(picky, model="m")
        await learner.complete(HELLO, schema=PlanAction)
        same_server = model_for(picky, model="m")  # another model object for the same server
        await same_server.complete(HELLO, schema=PlanAction)
        other_model = model_for(picky, model="m2")
        await other_model.complete(HELLO, schema=PlanAction)
        other_server = model_for(other, model="m")
        await other_server.complete(HELLO, schema=PlanAction)
        for model in (learner, same_server, other_model, other_server):
            await model.aclose()
    sent = [(r.body["model"], format_of(r.body)) for r in picky.requests]
    learned_once = [("m", "json_schema"), ("m", "json_object"), ("m", "json_object")]
    assert sent == [*learned_once, ("m2", "json_schema"), ("m2", "json_object")]
    assert [format_of(r.body) for r in other.requests] == ["json_schema"]


async def test_fastapi_422_naming_the_format_is_a_refusal_but_its_echo_of_the_request_is_not() -> None:
    refusal = {"detail": [{"loc": ["body", "response_format", "type"], "msg": "unexpected value"}]}
    unrelated = {
        "detail": [
            {
                "loc": ["body", "messages", 0, "role"],
                "msg": "Input should be 'system', 'user' or 'assistant'",
                "input": {"response_format": {"type": "json_schema"}},
            }
        ]
    }
    replies = iter([HttpError(422, body=refusal), PLAN, HttpError(422, body=unrelated)])
    async with FakeOpenAIServer(lambda body: next(replies)) as server:
        model = model_for(server, model="m")
        assert await model.complete(HELLO, schema=PlanAction) == PLAN
        with pytest.raises(LLMError, match=r"HTTP 422: body\.messages\.0\.role: Input should be"):
            await model.complete(HELLO, schema=PlanAction)
        await model.aclose()
    assert [format_of(r.body) for r in server.requests] == ["json_schema", "json_object", "json_object"]


async def test_a_format_error_inside_the_stream_before_any_text_is_a_refusal() -> None:
    def handler(body: dict[str, Any]) -> Any:
        if format_of(body) == "json_schema":
            return [Chunk(data={"error": {"message": "guided decoding backend failed", "code": 400}})]
        return PLAN

    async with FakeOpenAIServer(handler) as server:
        model = model_for(server, model="m")
        assert await model.complete(HELLO, schema=PlanAction) == PLAN
        await model.aclose()
    assert [format_of(r.body) for r in server.requests] == ["json_schema", "json_object"]


async def test_a_context_error_inside_the_stream_is_a_context_length_error() -> None:
    error = {"error": {"message": "This model's maximum context length is 2048 tokens.", "code": 400}}
    async with FakeOpenAIServer(lambda body: [Chunk(data=error)]) as server:
        model = model_for(server, model="m")
        with pytest.raises(ContextLengthError):
            await model.complete(HELLO)
        await model.aclose()


async def test_an_error_after_text_has_streamed_fails_the_call() -> None:
    error = {"error": {"message": "engine died", "code": 500}}
    async with FakeOpenAIServer(lambda body: ["Partial", Chunk(data=error)]) as server:
        model = model_for(server, model="m")
        with pytest.raises(LLMError, match="mid-reply: engine died"):
            await model.complete(HELLO)
        await model.aclose()
    assert len(server.requests) == 1


async def test_an_empty_reply_cut_for_length_means_the_prompt_filled_the_context() -> None:
    # LMDeploy answers a prompt that fills its session with no text and finish_reason "length"
    nothing = [Chunk({"role": "assistant"}), Chunk(finish_reason="length")]
    async with FakeOpenAIServer(lambda body: nothing) as server:
        model = model_for(server, model="m")
        with pytest.raises(ContextLengthError):
            await model.complete(HELLO)
        await model.aclose()


async def test_base_models_negotiate_grammar_then_json_schema_on_completions() -> None:
    def handler(body: dict[str, Any]) -> Any:
        if "grammar" in body:
            return 400, "grammar is not supported by this server"
        return ['{"add": [], ', '"finish": true}']

    async with FakeOpenAIServer(handler) as server:
        model = model_for(server, model="m", style="base")
        assert await model.complete(HELLO, schema=PlanAction) == PLAN
        await model.aclose()
    assert [r.path for r in server.requests] == ["/v1/completions"] * 2
    assert "grammar" in server.requests[0].body
    assert server.requests[1].body["json_schema"]["title"] == "PlanAction"
    assert server.requests[1].body["prompt"] == "hello"


async def test_transient_errors_naming_the_format_are_retried_not_learned() -> None:
    replies = iter([HttpError(429, "too many json_schema requests, slow down"), PLAN])
    async with FakeOpenAIServer(lambda body: next(replies)) as server:
        model = model_for(server, model="m")
        assert await model.complete(HELLO, schema=PlanAction) == PLAN
        await model.aclose()
    assert [format_of(r.body) for r in server.requests] == ["json_schema", "json_schema"]

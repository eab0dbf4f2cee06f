"""Where a model call's tokens come from: the server's ``usage`` (asked with ``stream_options``, which a
server may refuse), llama.cpp's tokenizer, LMDeploy's lengths; an estimate, marked, when none counts."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from mindsearch import _telemetry as telemetry
from mindsearch.llm.base import Message, Meter, ModelRequest
from mindsearch.llm.openai import OpenAIModel, usage_option
from mindsearch.testing import Chunk, FakeOpenAIServer, HttpError

USAGE = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}


def model_for(server: FakeOpenAIServer) -> OpenAIModel:
    return OpenAIModel(f"{server.url}/v1", model="m", retries=0, backoff=0.0)


async def call(model: Any, text: str = "hi") -> tuple[str, ModelRequest]:
    request = ModelRequest([Message("user", text)])
    reply = "".join([piece async for piece in model._stream(request)])
    return reply, request


def answers_usage_when_asked(body: dict[str, Any]) -> Any:
    if (body.get("stream_options") or {}).get("include_usage"):
        return ["Hello", Chunk(finish_reason="stop"), Chunk(choices=[], usage=USAGE)]
    return ["Hello", Chunk(finish_reason="stop")]


async def test_usage_is_asked_for_and_read_from_the_last_chunk() -> None:
    async with FakeOpenAIServer(answers_usage_when_asked) as server:
        model = model_for(server)
        reply, request = await call(model)
        await model.aclose()
        assert usage_option(f"{server.url}/v1") is True
    assert usage_option(f"{server.url}/v1") is None, "forgotten with the server"
    assert reply == "Hello" and request.meter == Meter(11, 2, "server")
    assert server.requests[0].body["stream_options"] == {"include_usage": True}


async def test_usage_on_every_chunk_keeps_the_last_and_a_whole_reply_carries_its_own() -> None:
    growing = [
        Chunk(delta={"content": "He"}, usage={"prompt_tokens": 11, "completion_tokens": 1}),
        Chunk(
            delta={"content": "llo"},
            finish_reason="stop",
            usage={"prompt_tokens": 11, "completion_tokens": 2},
        ),
    ]
    async with FakeOpenAIServer(lambda body: growing) as server:
        model = model_for(server)
        _reply, request = await call(model)
        await model.aclose()
    assert request.meter == Meter(11, 2, "server")
    async with FakeOpenAIServer(answers_usage_when_asked, streaming=False) as server:  # ignores "stream"
        model = model_for(server)
        reply, request = await call(model)
        await model.aclose()
    assert reply == "Hello" and request.meter == Meter(11, 2, "server")


@pytest.mark.parametrize(
    "refusal",
    [
        HttpError(400, "Unrecognized request argument supplied: stream_options"),  # OpenAI's words
        HttpError(  # FastAPI-based servers (an older LMDeploy): the validation error names the field
            422,
            body={
                "detail": [
                    {"loc": ["body", "stream_options"], "msg": "Extra inputs are not permitted", "type": "x"}
                ]
            },
        ),
    ],
)
async def test_a_server_that_refuses_stream_options_is_asked_again_without_and_learned(
    refusal: HttpError,
) -> None:
    def handler(body: dict[str, Any]) -> Any:
        return refusal if "stream_options" in body else ["Hello", Chunk(finish_reason="stop")]

    async with FakeOpenAIServer(handler) as server:
        model = model_for(server)
        first, request = await call(model)
        second, _ = await call(model)
        await model.aclose()
        assert usage_option(f"{server.url}/v1") is False
    assert first == second == "Hello" and request.meter == Meter()
    assert ["stream_options" in r.body for r in server.requests] == [True, False, False]
    usage = telemetry.call_usage(request, first)  # no count to be had: an estimate, said so
    assert usage.source == "estimate" and usage.prompt_tokens > 0 and usage.completion_tokens == 2


async def test_other_errors_are_not_taken_for_a_refusal_of_usage() -> None:
    async with FakeOpenAIServer(lambda body: HttpError(401, "bad key; stream_options ignored")) as server:
        model = model_for(server)
        with pytest.raises(Exception, match="401"):
            await call(model)
        await model.aclose()
        assert len(server.requests) == 1 and usage_option(f"{server.url}/v1") is None


# --- llama.cpp: its own tokenizer --------------------------------------------------------------------
class FakeLlama:
    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return [0] * (len(text.split()) + (1 if add_bos else 0))

    def create_completion(self, prompt: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for piece in ["one ", "two ", "three"]:
            yield {"choices": [{"text": piece, "finish_reason": None}]}
        yield {"choices": [{"text": "", "finish_reason": "stop"}]}


def llama_model() -> Any:
    from mindsearch.llm.llamacpp import LlamaCppModel

    model = LlamaCppModel.__new__(LlamaCppModel)  # no GGUF file: the parts _pieces uses
    model.name, model.style, model.temperature, model.max_tokens = "llamacpp:fake.gguf", "base", 0.0, 16
    model._llama, model._grammars = FakeLlama(), {}
    model.stats = {"calls": 0, "prompt_tokens": 0, "prompt_seconds": 0.0, "tokens": 0, "seconds": 0.0}
    return model


def test_llamacpp_counts_with_its_tokenizer_even_when_stopped_early() -> None:
    pytest.importorskip("llama_cpp")
    model = llama_model()
    request = ModelRequest([Message("user", "a b c d")])
    assert "".join(model._pieces(request)) == "one two three"
    assert request.meter == Meter(5, 3, "tokenizer") and model.stats["prompt_tokens"] == 5
    early = ModelRequest([Message("user", "a b")])
    pieces = model._pieces(early)
    assert next(pieces) == "one "
    pieces.close()  # the caller stopped: what was generated still counts
    assert early.meter == Meter(3, 1, "tokenizer")


# --- LMDeploy: the lengths its responses carry --------------------------------------------------------
class Response:
    def __init__(self, text: str, generated: int) -> None:
        self.text, self.input_token_len, self.generate_token_len = text, 42, generated


class Pipeline:
    def __init__(self, model_path: str, backend_config: Any = None) -> None:
        pass

    def stream_infer(self, prompts: list[Any], gen_config: Any) -> Iterator[Response]:
        yield from (Response("Hello", 1), Response(" there", 2))


async def test_lmdeploy_usage_comes_from_its_responses(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("lmdeploy")
    module.pipeline = Pipeline  # type: ignore[attr-defined]
    module.GenerationConfig = lambda **kwargs: kwargs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lmdeploy", module)
    from mindsearch.llm.lmdeploy import LMDeployModel

    reply, request = await call(LMDeployModel())
    assert reply == "Hello there" and request.meter == Meter(42, 2, "backend")

"""The LMDeploy adapter, without lmdeploy (the clear error) and with a stand-in module of its shape."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from mindsearch import Settings
from mindsearch._graph import PlanAction
from mindsearch.llm.base import LLMError, Message
from mindsearch.llm.lmdeploy import LMDeployModel


def test_missing_lmdeploy_says_how_to_install_or_use_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lmdeploy", None)  # import lmdeploy raises ImportError
    with pytest.raises(LLMError) as info:
        LMDeployModel.from_settings(Settings(llm="lmdeploy"))
    message = str(info.value)
    assert "pip install 'mindsearch[lmdeploy]'" in message and "lmdeploy serve api_server" in message
    assert "\n" not in message


class GenerationConfig:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class Response:
    def __init__(self, text: str) -> None:
        self.text = text


class Pipeline:
    instances: ClassVar[list[Pipeline]] = []

    def __init__(self, model_path: str, backend_config: Any = None) -> None:
        self.model_path = model_path
        self.backend_config = backend_config
        self.calls: list[dict[str, Any]] = []
        Pipeline.instances.append(self)

    def stream_infer(self, prompts: list[Any], gen_config: GenerationConfig) -> Iterator[Response]:
        self.calls.append({"prompts": prompts, "gen_config": gen_config})
        yield from (Response(piece) for piece in ["<think>x</think>", "Hello", " there"])


class TurbomindEngineConfig:
    def __init__(self, session_len: int) -> None:
        self.session_len = session_len


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("lmdeploy")
    module.pipeline = Pipeline  # type: ignore[attr-defined]
    module.GenerationConfig = GenerationConfig  # type: ignore[attr-defined]
    module.TurbomindEngineConfig = TurbomindEngineConfig  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lmdeploy", module)
    Pipeline.instances.clear()
    return module


async def test_call_shape_matches_lmdeploy(standin: types.ModuleType) -> None:
    model = LMDeployModel.from_settings(Settings(llm="lmdeploy", max_tokens=77, n_ctx=4096))
    assert model.name == "lmdeploy:internlm/internlm2_5-7b-chat"
    text = await model.complete([Message("system", "be brief"), Message("user", "hi")], stop=["\n\n"])
    assert text == "Hello there"
    pipe = Pipeline.instances[0]
    assert pipe.model_path == "internlm/internlm2_5-7b-chat" and pipe.backend_config.session_len == 4096
    call = pipe.calls[0]
    assert call["prompts"] == [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]]
    assert call["gen_config"].kwargs["max_new_tokens"] == 77
    assert call["gen_config"].kwargs["stop_words"] == ["\n\n"]
    await model.complete([Message("user", "plan")], schema=PlanAction)
    fmt = pipe.calls[1]["gen_config"].kwargs["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "PlanAction"
    assert len(Pipeline.instances) == 1, "the pipeline is built once"


async def test_engine_errors_become_llm_errors(standin: types.ModuleType) -> None:
    def broken(self: Pipeline, prompts: list[Any], gen_config: GenerationConfig) -> Iterator[Response]:
        raise RuntimeError("CUDA out of memory")
        yield

    Pipeline.stream_infer = broken  # type: ignore[method-assign]
    try:
        model = LMDeployModel()
        with pytest.raises(LLMError, match="CUDA out of memory"):
            await model.complete([Message("user", "hi")])
    finally:
        del Pipeline.stream_infer

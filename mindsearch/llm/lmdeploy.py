"""In-process LMDeploy (TurboMind) for InternLM2.5-7B-chat, the reference backend on a GPU.

``lmdeploy`` is an optional extra (``pip install 'mindsearch[lmdeploy]'``) imported only when this
backend is chosen; it needs CUDA (or Ascend/MACA/Camb). Without it, the error says how to install
it, or how to use ``lmdeploy serve api_server`` with the ``openai`` backend instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..settings import Settings
from .base import ChatModel, LLMError, ModelRequest, stream_from_thread

DEFAULT_MODEL = "internlm/internlm2_5-7b-chat"
MISSING = (
    "the lmdeploy backend needs the lmdeploy package, which is not installed: "
    "pip install 'mindsearch[lmdeploy]' (needs a CUDA GPU), or run "
    "`lmdeploy serve api_server internlm/internlm2_5-7b-chat --server-port 23333` and use "
    "--llm openai --base-url http://127.0.0.1:23333/v1"
)


class LMDeployModel(ChatModel):
    def __init__(
        self,
        model_path: str = DEFAULT_MODEL,
        *,
        temperature: float = 0.0,
        max_tokens: int = 512,
        session_len: int = 8192,
    ) -> None:
        try:
            import lmdeploy
        except ImportError as exc:
            raise LLMError(MISSING) from exc
        self._lmdeploy: Any = lmdeploy
        self.model_path = model_path
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.session_len = session_len
        self.name = f"lmdeploy:{model_path}"
        self.style = "chat"
        self._pipe: Any = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> LMDeployModel:
        return cls(
            settings.model or DEFAULT_MODEL,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            session_len=settings.n_ctx,
        )

    def _pipeline(self) -> Any:
        if self._pipe is None:
            lmdeploy = self._lmdeploy
            config_class = getattr(lmdeploy, "TurbomindEngineConfig", None)
            backend_config = config_class(session_len=self.session_len) if config_class else None
            self._pipe = lmdeploy.pipeline(self.model_path, backend_config=backend_config)
        return self._pipe

    def gen_config(self, request: ModelRequest) -> Any:
        kwargs: dict[str, Any] = {
            "max_new_tokens": request.max_tokens or self.max_tokens,
            "temperature": max(self.temperature, 1e-5),
            "top_k": 1 if self.temperature == 0 else 40,
        }
        if request.stop:
            kwargs["stop_words"] = list(request.stop)
        schema = request.json_schema()
        if schema is not None and request.schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema.__name__, "schema": schema},
            }
        return self._lmdeploy.GenerationConfig(**kwargs)

    def _pieces(self, request: ModelRequest) -> Iterator[str]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        for response in self._pipeline().stream_infer([messages], gen_config=self.gen_config(request)):
            # LMDeploy's responses count the prompt and the tokens generated so far
            request.meter.record(
                getattr(response, "input_token_len", None),
                getattr(response, "generate_token_len", None),
                "backend",
            )
            text = getattr(response, "text", "")
            if text:
                yield text

    async def _stream(self, request: ModelRequest) -> AsyncIterator[str]:
        async with self._lock:
            async for piece in stream_from_thread(lambda: self._pieces(request)):
                yield piece

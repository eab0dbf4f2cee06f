"""Any OpenAI-compatible server: LMDeploy's api_server, vLLM, Ollama, llama.cpp's server, hosted APIs.

Streams ``/chat/completions`` over SSE with aiohttp. Structured output is asked as
``response_format: json_schema``; a server that refuses it (HTTP 400/422) is asked again with
``json_object``, then with no format, and the reply is parsed and validated either way. 429, 5xx and
connection resets are retried with exponential backoff, but only before any text has been streamed.
``reasoning_content`` deltas (reasoning models) are never passed on.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp

from ..settings import Settings
from .base import ChatModel, LLMError, ModelRequest, completion_prompt

READY_FOR = 30.0  # seconds a successful readiness check is trusted
RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}
# Ways to ask for JSON, tried in order until the server takes one (learned once per model object).
CHAT_FORMATS = ("json_schema", "json_object", "none")
COMPLETION_FORMATS = ("grammar", "json_schema", "none")


class OpenAIModel(ChatModel):
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 512,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 0.5,
        style: Literal["chat", "base"] = "chat",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(10.0, timeout))
        self.retries = retries
        self.backoff = backoff
        self.name = f"openai:{model or '?'}@{self.base_url}"
        self.style = style
        self.formats = CHAT_FORMATS if style == "chat" else COMPLETION_FORMATS
        self._ready_at = -READY_FOR
        self._format_index = 0  # which response_format this server accepts, learned on first refusal
        self._session: aiohttp.ClientSession | None = None
        self._model_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIModel:
        return cls(
            settings.base_url,
            api_key=settings.llm_api_key,
            model=settings.model,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            timeout=settings.llm_timeout,
            retries=settings.llm_retries,
            style=settings.resolved_prompt_style,
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def model_name(self) -> str:
        """The configured model, or the first one the server lists (LMDeploy and llama.cpp serve one)."""
        if self.model:
            return self.model
        async with self._model_lock:
            if self.model:
                return self.model
            try:
                async with self.session().get(f"{self.base_url}/models", headers=self._headers()) as response:
                    if response.status != 200:
                        raise LLMError(
                            f"{self.base_url}/models answered HTTP {response.status}; set MINDSEARCH_MODEL"
                        )
                    data = await response.json(content_type=None)
                self.model = str(data["data"][0]["id"])
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                raise LLMError(_unreachable(self.base_url, exc)) from exc
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise LLMError(f"{self.base_url}/models lists no model; set MINDSEARCH_MODEL") from exc
            self.name = f"openai:{self.model}@{self.base_url}"
            return self.model

    async def ready(self) -> None:
        """Fail fast, once, with a clear message when the server is down (not once per step).

        A server that answered in the last ``READY_FOR`` seconds is not asked again, so a busy API
        does not send one extra request per run.
        """
        if time.monotonic() - self._ready_at < READY_FOR:
            return
        if not self.model:
            await self.model_name()
        else:
            try:
                async with self.session().get(f"{self.base_url}/models", headers=self._headers()) as response:
                    await response.read()  # any answer, even 404, means the server is there
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                raise LLMError(_unreachable(self.base_url, exc)) from exc
        self._ready_at = time.monotonic()

    def _body(self, request: ModelRequest, model: str, format_kind: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "stream": True,
            "temperature": self.temperature,
            "max_tokens": request.max_tokens or self.max_tokens,
        }
        if self.style == "chat":
            body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        else:  # a base model: plain completion, no chat template
            body["prompt"] = completion_prompt(request.messages)
        if request.stop:
            body["stop"] = request.stop[:4]
        schema = request.json_schema()
        if schema is None:
            return body
        name = request.schema.__name__ if request.schema else "reply"
        if format_kind == "json_schema" and self.style == "chat":
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
        elif format_kind == "json_schema":
            body["json_schema"] = schema  # llama.cpp's server
        elif format_kind == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema}
        elif format_kind == "grammar":
            body["grammar"] = _gbnf(schema)  # llama-cpp-python's server
        return body

    async def _stream(self, request: ModelRequest) -> AsyncIterator[str]:
        model = await self.model_name()
        url = f"{self.base_url}/{'chat/completions' if self.style == 'chat' else 'completions'}"
        attempt = 0
        while True:
            format_kind = self.formats[self._format_index] if request.schema is not None else "none"
            body = self._body(request, model, format_kind)
            streamed = False
            try:
                async with self.session().post(url, json=body, headers=self._headers()) as response:
                    if response.status >= 400 and format_kind != "none":
                        error = await _error_text(response)
                        if response.status in (400, 422) or "format" in error or "grammar" in error:
                            self._format_index += 1  # the server does not take this way of asking for JSON
                            continue
                    if response.status in RETRY_STATUSES and attempt < self.retries:
                        attempt += 1
                        await asyncio.sleep(
                            _delay(self.backoff, attempt, response.headers.get("Retry-After"))
                        )
                        continue
                    if response.status >= 400:
                        raise LLMError(
                            f"{url} answered HTTP {response.status}: {await _error_text(response)}"
                        )
                    async for text in _read_sse(response):
                        streamed = True
                        yield text
                    return
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
                if streamed:
                    raise LLMError(f"the model's reply was cut off: {type(exc).__name__}: {exc}") from exc
                if attempt >= self.retries:
                    raise LLMError(_unreachable(self.base_url, exc)) from exc
                attempt += 1
                await asyncio.sleep(_delay(self.backoff, attempt, None))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_sse(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """Text deltas from an SSE chat stream (or from a plain JSON reply, for servers that ignore stream)."""
    content_type = response.headers.get("Content-Type", "")
    if "text/event-stream" not in content_type:
        whole = _message_text(await response.json(content_type=None))
        if whole:
            yield whole
        return
    buffer = b""
    finished = False
    async for chunk in response.content.iter_any():
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                return
            try:
                data = json.loads(payload)
            except json.JSONDecodeError:
                continue
            if "error" in data:
                raise LLMError(f"the server reported an error mid-stream: {data['error']}")
            for choice in data.get("choices") or []:
                piece = choice["text"] if "text" in choice else (choice.get("delta") or {}).get("content")
                if piece:
                    yield str(piece)
                finished = finished or bool(choice.get("finish_reason"))
    if not finished:
        raise LLMError("the model's reply was cut off (the stream ended without [DONE])")


def _gbnf(schema: dict[str, Any]) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return str(json_schema_to_gbnf(json.dumps(schema)))


def _message_text(data: Any) -> str:
    try:
        choice = data["choices"][0]
        return str(choice["text"] if "text" in choice else choice["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        raise LLMError(f"unexpected reply from the server: {str(data)[:200]}") from None


async def _error_text(response: aiohttp.ClientResponse) -> str:
    try:
        text = await response.text()
    except (aiohttp.ClientError, UnicodeDecodeError):
        return "(no body)"
    try:
        data = json.loads(text)
        message = (
            data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("error")
        )
        return str(message or data.get("detail") or text)[:300]
    except (json.JSONDecodeError, AttributeError):
        return text[:300]


def _delay(backoff: float, attempt: int, retry_after: str | None) -> float:
    if retry_after:
        try:
            return min(float(retry_after), 30.0)
        except ValueError:
            pass
    return float(backoff * (2 ** (attempt - 1)) * (0.5 + random.random()))


def _unreachable(base_url: str, exc: BaseException) -> str:
    return (
        f"cannot reach the OpenAI-compatible server at {base_url} "
        f"({type(exc).__name__}: {exc or 'timeout'}); "
        "is it running? (e.g. lmdeploy serve api_server internlm/internlm2_5-7b-chat --server-port 23333, "
        "then MINDSEARCH_BASE_URL=http://127.0.0.1:23333/v1)"
    )

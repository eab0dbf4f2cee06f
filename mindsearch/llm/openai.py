"""Any OpenAI-compatible server: LMDeploy's api_server, vLLM, Ollama, llama.cpp's server, hosted APIs.

Streams ``/chat/completions`` over SSE with aiohttp. 429, 5xx and connection resets are retried with
exponential backoff, but only before any text has been streamed.

Structured output is negotiated per server (base URL and model): a call asks for JSON the best way
that server is not known to refuse (``response_format: json_schema``, then ``json_object``, then
nothing; the reply is parsed and validated either way). A refusal is learned only from an error that
names the format, so one oversized prompt cannot downgrade the server for good. A prompt too long
for the context raises ``ContextLengthError``; any other error fails that call alone.

Replies come in many styles: ``content`` deltas are the answer, ``reasoning_content``/``reasoning``
never are, and a server that sends the JSON as a tool call has its arguments taken as the reply.

Token usage is asked for (``stream_options: {"include_usage": true}``) and read from the chunk that
carries it into the call's ``Meter``. A server that refuses the option (an error that names it, as
OpenAI's and FastAPI's validation errors do) is asked again without it, and that is learned per base
URL, so later calls do not ask; a server that ignores it sends no usage, and the tokens are estimated.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from ..settings import Settings
from .base import (
    TRUNCATED,
    ChatModel,
    ContextLengthError,
    LLMError,
    Meter,
    ModelRequest,
    ReplyTruncated,
    completion_prompt,
    is_context_overflow,
)

READY_FOR = 30.0  # seconds a successful readiness check is trusted
RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}
# Ways to ask for JSON, best first; the last asks for none, which no server refuses.
CHAT_FORMATS = ("json_schema", "json_object", "none")
COMPLETION_FORMATS = ("grammar", "json_schema", "none")
ERROR_CHARS = 300  # an upstream error message is cut to this length in our messages
# Words of an error that refuses the way JSON was asked for (OpenAI, vLLM, LMDeploy, llama.cpp, Ollama).
FORMAT_WORDS = (
    "response_format",
    "response format",
    "json_schema",
    "json schema",
    "json_object",
    "json mode",
    "grammar",
    "guided",
    "structured output",
    "xgrammar",
    "outlines",
    "format enforcer",
    "invalid format",
)
NOT_A_FORMAT_REFUSAL = {401, 403, 408, 429}  # auth and load errors, whatever their text says
USAGE_WORDS = ("stream_options", "include_usage", "stream options")  # an error that refuses usage


class FormatLadder:
    """The ways one server may take a request for JSON, best first, and how far refusals moved it.

    Shared by every call to that server, so calls refused at once move it one step per refused way,
    never past the last (asking for no format).
    """

    def __init__(self, formats: tuple[str, ...]) -> None:
        self.formats = formats
        self._index = 0
        self._lock = threading.Lock()  # models in several event loops may share a server

    @property
    def current(self) -> str:
        """The way a new call asks: the best one the server has not refused."""
        return self.formats[self._index]

    def refused(self, kind: str) -> str:
        """Learn that the server refused ``kind``; return the way after it, for the refused call."""
        after = min(self.formats.index(kind) + 1, len(self.formats) - 1)
        with self._lock:
            self._index = max(self._index, after)
        return self.formats[after]


_LADDERS: dict[tuple[str, str, tuple[str, ...]], FormatLadder] = {}
_LADDERS_LOCK = threading.Lock()


def format_ladder(base_url: str, model: str, formats: tuple[str, ...]) -> FormatLadder:
    """What this process has learned about how the server at ``base_url`` serving ``model`` takes JSON."""
    key = (base_url.rstrip("/"), model, formats)
    with _LADDERS_LOCK:
        return _LADDERS.setdefault(key, FormatLadder(formats))


def forget_formats(base_url: str | None = None) -> None:
    """Forget what servers (all, or those under ``base_url``) refused: they may have been restarted
    with other options, or (in tests) another server may now listen on the same port."""
    with _LADDERS_LOCK:
        prefix = (base_url or "").rstrip("/")
        for key in [k for k in _LADDERS if base_url is None or (k[0] + "/").startswith(prefix + "/")]:
            del _LADDERS[key]
        for url in [u for u in _USAGE if base_url is None or (u + "/").startswith(prefix + "/")]:
            del _USAGE[url]


# What each server (by base URL) did with ``stream_options``: True took it, False refused it.
_USAGE: dict[str, bool] = {}


def usage_option(base_url: str) -> bool | None:
    """Whether the server at ``base_url`` takes ``stream_options`` (None: not known yet)."""
    with _LADDERS_LOCK:
        return _USAGE.get(base_url.rstrip("/"))


def learn_usage_option(base_url: str, taken: bool) -> None:
    with _LADDERS_LOCK:
        key = base_url.rstrip("/")
        if _USAGE.get(key) is not False:  # a refusal is not undone by a later success without it
            _USAGE[key] = taken


class OpenAIModel(ChatModel):
    """A model behind an OpenAI-compatible HTTP API (chat, or plain completions for base models)."""

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

    def _body(
        self, request: ModelRequest, model: str, format_kind: str, ask_usage: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "stream": True,
            "temperature": self.temperature,
            "max_tokens": request.max_tokens or self.max_tokens,
        }
        if ask_usage:
            body["stream_options"] = {"include_usage": True}  # the tokens, in a last chunk
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

    def format_ladder(self, model: str) -> FormatLadder:
        """How the server behind this model takes requests for JSON (shared with every model using it)."""
        return format_ladder(self.base_url, model, self.formats)

    async def _stream(self, request: ModelRequest) -> AsyncIterator[str]:
        model = await self.model_name()
        url = f"{self.base_url}/{'chat/completions' if self.style == 'chat' else 'completions'}"
        ladder = self.format_ladder(model) if request.schema is not None else None
        format_kind = ladder.current if ladder is not None else "none"
        ask_usage = usage_option(self.base_url) is not False
        attempt = 0
        while True:
            try:
                body = self._body(request, model, format_kind, ask_usage)
            except _FormatUnavailable:
                assert ladder is not None
                format_kind = ladder.refused(format_kind)
                continue
            streamed = False
            failure: _Failure | None = None
            try:
                async with self.session().post(url, json=body, headers=self._headers()) as response:
                    if response.status >= 400:
                        failure = await _failure(response)
                    else:
                        if ask_usage:
                            learn_usage_option(self.base_url, True)
                        async for text in _read_sse(response, request.meter):
                            streamed = True
                            yield text
                        return
            except _Failure as exc:  # an error reported inside a 200 reply
                if streamed:
                    raise LLMError(f"the server reported an error mid-reply: {exc.brief}") from None
                failure = exc
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
                if streamed:
                    raise LLMError(f"the model's reply was cut off: {type(exc).__name__}: {exc}") from exc
                if attempt >= self.retries:
                    raise LLMError(_unreachable(self.base_url, exc)) from exc
                attempt += 1
                await asyncio.sleep(_delay(self.backoff, attempt, None))
                continue
            if failure.context_overflow:
                raise ContextLengthError(f"the prompt is too long for {model}'s context: {failure.brief}")
            if ask_usage and failure.refuses_usage:
                learn_usage_option(self.base_url, False)  # this call and later ones go without it
                ask_usage = False
                continue
            if ladder is not None and format_kind != "none" and failure.refuses_format:
                format_kind = ladder.refused(format_kind)  # this call goes on with the next way
                continue
            if failure.status in RETRY_STATUSES and attempt < self.retries:
                attempt += 1
                await asyncio.sleep(_delay(self.backoff, attempt, failure.retry_after))
                continue
            answer = f"HTTP {failure.status}" if failure.status else "an error"  # an error in a 200 reply
            raise LLMError(f"{url} answered {answer}: {failure.brief}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _FormatUnavailable(Exception):
    """This client cannot build the request for a way of asking for JSON (no GBNF converter)."""


class _Failure(Exception):
    """An error the server answered, as an HTTP status or inside a reply, with what it means for us."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    @property
    def brief(self) -> str:
        """The server's message on one line, cut short: it goes into events and logs."""
        return _one_line(self.message)

    @property
    def context_overflow(self) -> bool:
        return self.status == 413 or is_context_overflow(self.message)

    @property
    def refuses_usage(self) -> bool:
        text = self.message.lower()
        return self.status not in NOT_A_FORMAT_REFUSAL and any(word in text for word in USAGE_WORDS)

    @property
    def refuses_format(self) -> bool:
        text = self.message.lower()
        return self.status not in NOT_A_FORMAT_REFUSAL and any(word in text for word in FORMAT_WORDS)


async def _failure(response: aiohttp.ClientResponse) -> _Failure:
    try:
        text = await response.text()
    except (aiohttp.ClientError, UnicodeDecodeError):
        text = ""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        data = text
    return _Failure(response.status, _error_message(data) or "(no body)", response.headers.get("Retry-After"))


def _error_message(data: Any) -> str:
    """The words of an error body: OpenAI's ``{"error": {...}}``, FastAPI's ``{"detail": ...}``, or text.

    OpenAI's ``type``, ``code`` and ``param`` are kept (they may be all that says "context length"),
    and FastAPI's echo of the request is not (it would name ``response_format`` in every error).
    """
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return json.dumps(data)[:2000]
    error = data.get("error")
    if isinstance(error, dict):
        extra = [str(error[key]) for key in ("type", "code", "param") if isinstance(error.get(key), str)]
        message = str(error.get("message") or "")
        extra = [word for word in extra if word]
        return f"{message} ({', '.join(extra)})" if extra else message
    if error:
        return str(error)
    detail = data.get("detail")
    if isinstance(detail, list):
        return "; ".join(_detail_item(item) for item in detail)
    if detail:
        return str(detail)
    return str(data.get("message") or json.dumps(data)[:2000])


def _detail_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc") or [])
    return f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", item))


def _one_line(text: str, limit: int = ERROR_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Reply:
    """What one reply carried besides the answer text already passed on."""

    answered: bool = False  # content that is not blank
    anything: bool = False  # any text at all: content, reasoning or tool call
    tools: dict[int, list[str]] = field(default_factory=dict)  # tool call arguments, by call index
    finish_reason: str | None = None

    def take(self, choice: Any) -> str:
        """The answer text in one choice (a streamed delta or a whole message), noting the rest."""
        if not isinstance(choice, dict):
            return ""
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        if "text" in choice:  # /completions
            part: Any = {"content": choice["text"]}
        else:
            part = choice.get("delta") or choice.get("message") or {}
        if not isinstance(part, dict):
            return ""
        if part.get("reasoning_content") or part.get("reasoning"):
            self.anything = True  # reasoning is never the answer, not even when it is all there is
        calls = part.get("tool_calls") or []
        if isinstance(part.get("function_call"), dict):  # the older single-function form
            calls = [*calls, {"index": 0, "function": part["function_call"]}]
        for position, call in enumerate(calls if isinstance(calls, list) else []):
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if arguments:
                index = call.get("index", position)
                text = arguments if isinstance(arguments, str) else json.dumps(arguments)
                self.tools.setdefault(index if isinstance(index, int) else position, []).append(text)
                self.anything = True
        content = part.get("content")
        if not isinstance(content, str) or not content:
            return ""
        self.anything = True
        self.answered = self.answered or not content.isspace()
        return content

    def tail(self) -> str:
        """A tool call's arguments are the reply when the model wrote no content."""
        if self.answered or not self.tools:
            return ""
        return "".join("".join(self.tools[index]) for index in sorted(self.tools))

    def check_end(self) -> None:
        # LMDeploy answers a prompt that fills its session with an empty reply cut for "length"
        if self.finish_reason == "length" and not self.anything:
            raise ContextLengthError("the prompt left no room for a reply (finish_reason 'length', no text)")

    def check_complete(self) -> None:
        """After the text has gone out: a reply cut at the token limit is said to be cut."""
        if self.finish_reason == "length":
            raise ReplyTruncated(TRUNCATED)


async def _read_sse(response: aiohttp.ClientResponse, meter: Meter | None = None) -> AsyncIterator[str]:
    """Answer text from an SSE stream (or from a plain JSON reply, for servers that ignore ``stream``);
    the token usage a chunk carries goes to ``meter``."""
    reply = _Reply()
    meter = meter if meter is not None else Meter()
    if "text/event-stream" not in response.headers.get("Content-Type", ""):
        try:
            data = await response.json(content_type=None)
        except ValueError:  # also aiohttp's ContentTypeError
            raise LLMError("the server's reply is neither an event stream nor JSON") from None
        _raise_reported_error(data)
        _take_usage(data, meter)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices:
            raise LLMError(f"unexpected reply from the server: {_one_line(str(data), 200)}")
        text = reply.take(choices[0]) + reply.tail()
        reply.check_end()
        if text:
            yield text
        reply.check_complete()
        return
    done = False
    async for payload in _sse_payloads(response):
        if payload == "[DONE]":
            done = True
            break
        try:
            data = json.loads(payload)
        except json.JSONDecodeError:
            continue
        _raise_reported_error(data)
        _take_usage(data, meter)
        for choice in (data.get("choices") if isinstance(data, dict) else None) or []:
            text = reply.take(choice)
            if text:
                yield text
    if not done and not reply.finish_reason:
        raise LLMError("the model's reply was cut off (the stream ended without [DONE])")
    reply.check_end()
    tail = reply.tail()
    if tail:
        yield tail
    reply.check_complete()


async def _sse_payloads(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The ``data:`` payloads of an SSE stream, one per line (comments and other fields skipped)."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.startswith(b"data:"):
                yield line[5:].strip().decode("utf-8", "replace")
    if buffer.startswith(b"data:"):  # a last line without its newline
        yield buffer[5:].strip().decode("utf-8", "replace")


def _take_usage(data: Any, meter: Meter) -> None:
    """The ``usage`` a chunk carries (OpenAI and vLLM: a last chunk with no choices; others: on every
    chunk, growing): the last one seen is the call's."""
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage, dict):
        meter.record(usage.get("prompt_tokens"), usage.get("completion_tokens"), "server")


def _raise_reported_error(data: Any) -> None:
    if isinstance(data, dict) and data.get("error"):
        error = data["error"]
        code = error.get("code") if isinstance(error, dict) else None
        status = int(code) if isinstance(code, int) or (isinstance(code, str) and code.isdigit()) else 0
        raise _Failure(status, _error_message(data))


def _gbnf(schema: dict[str, Any]) -> str:
    try:
        from llama_cpp.llama_grammar import json_schema_to_gbnf
    except ImportError as exc:  # llama-cpp-python is optional: ask the next way instead
        raise _FormatUnavailable from exc
    return str(json_schema_to_gbnf(json.dumps(schema)))


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

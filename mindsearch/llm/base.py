"""The one interface every language-model backend implements, and what they share.

A backend streams text for a list of messages. It may be asked for JSON that follows a schema (the
planner and the searcher's queries), to stop at stop words and to cap the reply length. Cancelling the
consumer of ``stream`` cancels the call. ``<think>`` sections of reasoning models are removed here,
once, for every backend, and ``extract_json`` reads the JSON out of the many ways models reply.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from .. import _telemetry as telemetry
from .._errors import MindSearchError

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass
class Meter:
    """The tokens of one call as the backend learned them: ``None`` while not known.

    A backend that can count (a server's ``usage``, llama.cpp's tokenizer, LMDeploy's lengths) fills it
    in as the call goes; ``mindsearch._telemetry`` reads it when the call ends and estimates what is
    missing, marked as an estimate.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    source: Literal["server", "backend", "tokenizer"] | None = None

    def record(
        self, prompt_tokens: Any, completion_tokens: Any, source: Literal["server", "backend", "tokenizer"]
    ) -> None:
        """Keep the counts that are real counts (non-negative ints); anything else is left unknown."""
        prompt, completion = _count(prompt_tokens), _count(completion_tokens)
        if prompt is None and completion is None:
            return
        self.prompt_tokens = prompt if prompt is not None else self.prompt_tokens
        self.completion_tokens = completion if completion is not None else self.completion_tokens
        self.source = source


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@dataclass(frozen=True)
class ModelRequest:
    """Everything a backend is asked in one call; the scripted test model sees exactly this."""

    messages: list[Message]
    schema: type[BaseModel] | None = None
    stop: list[str] = field(default_factory=list)
    max_tokens: int | None = None
    meter: Meter = field(default_factory=Meter, compare=False, repr=False)  # the backend's token counts

    @property
    def text(self) -> str:
        """All message contents joined: handy for assertions about what the model was shown."""
        return "\n".join(message.content for message in self.messages)

    def json_schema(self) -> dict[str, Any] | None:
        return None if self.schema is None else self.schema.model_json_schema()


class LLMError(MindSearchError, RuntimeError):
    """A model call failed for good (after retries); the message says why in one line."""


class ReplyTruncated(LLMError):
    """The model stopped at its token limit before it finished; the text it gave was passed on.

    Raised after the last piece, so a streaming caller keeps what it showed and says the answer is
    cut; ``complete`` returns the text (a parser decides whether it is usable).
    """


TRUNCATED = "the model stopped at its token limit before it finished (MINDSEARCH_MAX_TOKENS)"


class ContextLengthError(LLMError):
    """The prompt does not fit the model's context: shorten it (fewer passages) and try once more.

    Distinct from ``LLMError`` because, unlike other failures, the caller can fix it.
    """


_CONTEXT_OVERFLOW = re.compile(
    "|".join(
        [
            r"context[_ ]length[_ ]exceeded",  # OpenAI's code, LMDeploy's error code
            r"maximum context length",  # OpenAI, vLLM, DeepSeek, Mistral
            r"exceed\w* (?:the )?(?:available |model(?:'s)? |maximum |max )?context (?:size|length|window)",
            r"exceed_context_size",  # llama.cpp's error type
            r"longer than the (?:model'?s? )?(?:maximum )?(?:context|model) length",  # vLLM, SGLang
            r"too long and exceeds (?:the )?limit",  # vLLM V1
            r"(?:prompt|input|request) is too long",
            r"exceed\w* (?:the )?(?:max(?:imum)? )?session[_ ]?len",  # LMDeploy
            r"tokens \+ `?max_new_tokens`? must be <=",  # text-generation-inference
            r"exceeds the maximum number of tokens",
            r"context window (?:is )?(?:full|exceeded)",
        ]
    ),
    re.IGNORECASE,
)


def is_context_overflow(message: str) -> bool:
    """Whether a server's error message says the prompt is too long for the model's context."""
    return bool(_CONTEXT_OVERFLOW.search(message))


class ChatModel(ABC):
    """A language model. Subclasses implement ``_stream``; callers use ``stream`` or ``complete``."""

    name: str = "model"
    style: Literal["chat", "base"] = "chat"
    # Learned from a reply that began inside a think block (the template put <think> in the prompt):
    # from then on the start of every streamed reply is held back until its </think>.
    opens_in_think: bool = False

    def stream(
        self,
        messages: list[Message],
        *,
        schema: type[BaseModel] | None = None,
        stop: list[str] | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[str]:
        request = ModelRequest(list(messages), schema, list(stop or []), max_tokens)
        return self._text(request, hold=self.opens_in_think)

    async def complete(
        self,
        messages: list[Message],
        *,
        schema: type[BaseModel] | None = None,
        stop: list[str] | None = None,
        max_tokens: int | None = None,
    ) -> str:
        # the whole reply is wanted anyway, so its start can wait for a </think> that has no <think>
        request = ModelRequest(list(messages), schema, list(stop or []), max_tokens)
        parts: list[str] = []
        try:
            async for part in self._text(request, hold=True):
                parts.append(part)
        except ReplyTruncated:
            pass  # a JSON object followed by rambling is still a JSON object
        return "".join(parts)

    def _text(self, request: ModelRequest, *, hold: bool) -> AsyncIterator[str]:
        observed = telemetry.model_call(self, request, self._stream(request))  # time, tokens, outcome
        return strip_think(observed, hold=hold, on_bare_close=self._learn_opens_in_think)

    def _learn_opens_in_think(self) -> None:
        self.opens_in_think = True

    @abstractmethod
    def _stream(self, request: ModelRequest) -> AsyncIterator[str]:
        """Yield the reply text piece by piece."""

    async def ready(self) -> None:
        """Check the backend can answer before a run starts (raise LLMError if not); default: nothing."""

    async def aclose(self) -> None:
        """Release sessions or memory; the default has nothing to release."""


def completion_prompt(messages: list[Message]) -> str:
    """Messages as one completion prompt, for base models that have no chat template.

    A repair round (assistant reply, then a user note) continues the same text.
    """
    text = ""
    for message in messages:
        if message.role == "assistant":
            text += " " + message.content.strip() + "\n"
        else:
            text += ("\n" if text and not text.endswith("\n") else "") + message.content
    return text.rstrip()


_OPEN, _CLOSE = "<think>", "</think>"


async def strip_think(
    pieces: AsyncIterator[str], *, hold: bool = False, on_bare_close: Callable[[], None] | None = None
) -> AsyncIterator[str]:
    """Drop ``<think>...</think>`` spans, even when a tag is split across pieces.

    A reply may also begin inside a think block whose ``<think>`` was in the prompt: its first tag
    is then a bare ``</think>``, and everything before it is reasoning. Text already passed on cannot
    be taken back, so with ``hold`` the start of the reply is kept until its first tag (or its end);
    without it, a bare ``</think>`` still drops what is left of the reasoning and calls
    ``on_bare_close`` (so the model can hold later replies).
    """
    inside = False
    seen_tag = False
    pending = ""
    held: list[str] = []  # text before the first tag, while holding
    try:
        async for piece in pieces:
            pending += piece
            out: list[str] = []
            while pending:
                if inside:
                    index = pending.find(_CLOSE)
                    if index < 0:  # reasoning: drop it, but keep a possible partial tag
                        keep = _partial_suffix(pending, _CLOSE)
                        pending = pending[len(pending) - keep :]
                        break
                    pending = pending[index + len(_CLOSE) :]
                    inside = False
                    continue
                open_at, close_at = pending.find(_OPEN), pending.find(_CLOSE)
                if open_at < 0 and close_at < 0:
                    keep = max(_partial_suffix(pending, _OPEN), _partial_suffix(pending, _CLOSE))
                    out.append(pending[: len(pending) - keep])
                    pending = pending[len(pending) - keep :]
                    break
                if open_at >= 0 and (close_at < 0 or open_at < close_at):
                    out.append(pending[:open_at])
                    pending = pending[open_at + len(_OPEN) :]
                    inside = True
                elif seen_tag:  # a stray </think> after the answer began: drop the tag alone
                    out.append(pending[:close_at])
                    pending = pending[close_at + len(_CLOSE) :]
                else:  # the reply began inside a think block
                    out.clear()
                    held.clear()
                    pending = pending[close_at + len(_CLOSE) :]
                    if on_bare_close is not None:
                        on_bare_close()
                seen_tag = True
            text = "".join(out)
            if hold and not seen_tag:
                held.append(text)
                continue
            text = "".join(held) + text
            held.clear()
            if text:
                yield text
        text = "".join(held) + ("" if inside else pending)
        if text:
            yield text
    finally:
        aclose = getattr(pieces, "aclose", None)
        if aclose is not None:
            await aclose()


def _partial_suffix(text: str, tag: str) -> int:
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def drop_think(text: str) -> str:
    """``strip_think`` for a whole reply: no think spans, nothing before a bare ``</think>``."""
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.DOTALL)
    close = text.rfind(_CLOSE)
    if close >= 0:  # a </think> left without its <think> ends the reasoning the reply began with
        text = text[close + len(_CLOSE) :]
    open_at = text.find(_OPEN)
    return text[:open_at] if open_at >= 0 else text  # a think block never closed (cut off)


# A fenced block: any language tag (json, JSON, none...), closed or the reply's last, unclosed one.
_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_MAX_SPANS = 64  # bracketed spans tried per reply, so a reply full of braces cannot take long
_QUOTE_CLOSE = {'"': '"', "'": "'", "“": "”"}
_FULL_WIDTH = {"：": ":", "，": ",", "｛": "{", "｝": "}", "［": "[", "］": "]"}
_WORDS = {"True": "true", "False": "false", "None": "null", "true": "true", "false": "false", "null": "null"}


def extract_json(text: str) -> Any:
    """Parse the JSON object (or list) in a model reply. Never evaluates code.

    Models wrap JSON in fences, prose and ``<think>`` blocks, and write it loosely: Python dicts
    (single quotes, ``True``/``None``), trailing commas, comments, full-width ``：``/``，`` outside
    strings. The first object that parses, strictly or after ``_loosen``, is returned; a list is
    returned as it is (the caller's validation says what is wrong), a scalar is not a reply.
    """
    text = drop_think(text).strip()
    candidates = [text, *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        value = _parse(candidate)
        if value is not None:
            return value
    for span in _spans(text):
        value = _parse(span)
        if isinstance(value, dict) or (isinstance(value, list) and not _all_numbers(value)):
            return value  # a list of numbers is a citation like [1], not the reply
    raise ValueError(f"the reply is not JSON: {text[:200]!r}")


def _parse(candidate: str) -> dict[str, Any] | list[Any] | None:
    """The object or list ``candidate`` holds, read strictly and then loosely; None if neither."""
    if not candidate or candidate[0] not in "{[“'\"":
        return None
    for attempt in (candidate, _loosen(candidate)):
        try:
            value = json.loads(attempt, strict=False)  # small models put raw newlines in strings
        except json.JSONDecodeError:
            continue
        if isinstance(value, str) and value.strip()[:1] in ("{", "["):  # JSON sent as a JSON string
            value = _parse(value.strip())
        if isinstance(value, (dict, list)):
            return value
    return None


def _all_numbers(value: list[Any]) -> bool:
    return all(isinstance(item, (int, float)) for item in value)


def _spans(text: str) -> Iterator[str]:
    """The bracketed spans of ``text`` in order: each ``{...}`` or ``[...]`` balanced outside strings.

    A span that never closes (a reply cut off mid-JSON) ends the search: the objects inside it are
    fragments, not the reply.
    """
    start = 0
    for _ in range(_MAX_SPANS):
        starts = [i for i in (text.find("{", start), text.find("[", start)) if i >= 0]
        if not starts:
            return
        begin = min(starts)
        end = _balanced_end(text, begin)
        if end < 0:
            return
        yield text[begin:end]
        start = end


def _balanced_end(text: str, begin: int) -> int:
    """Where the span opened at ``begin`` ends (just after its closing bracket); -1 if it never does."""
    depth, quote, escaped = 0, "", False
    for index in range(begin, len(text)):
        char = text[index]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in _QUOTE_CLOSE:
            quote = _QUOTE_CLOSE[char]
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    return -1


def _loosen(text: str) -> str:
    """Loose JSON made strict: Python literals and quotes, comments, trailing commas, unquoted keys,
    full-width ``：``/``，`` between tokens. Works token by token, so no string's content changes.
    """
    out: list[str] = []
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char in _QUOTE_CLOSE:
            index = _string(text, index, out)
        elif text.startswith("//", index) or char == "#":
            newline = text.find("\n", index)
            index = size if newline < 0 else newline
        elif text.startswith("/*", index):
            close = text.find("*/", index + 2)
            index = size if close < 0 else close + 2
        elif char.isalpha() or char == "_":
            end = index
            while end < size and (text[end].isalnum() or text[end] == "_"):
                end += 1
            word = text[index:end]
            rest = text[end:].lstrip()
            if word in _WORDS:
                out.append(_WORDS[word])
            elif rest[:1] in (":", "："):  # an unquoted key
                out.append(json.dumps(word))
            else:
                out.append(word)
            index = end
        else:
            char = _FULL_WIDTH.get(char, char)
            if char in "}]":  # a trailing comma before it goes
                last = len(out) - 1
                while last >= 0 and out[last].isspace():
                    last -= 1
                if last >= 0 and out[last] == ",":
                    del out[last]
            out.append(char)
            index += 1
    return "".join(out)


def _string(text: str, index: int, out: list[str]) -> int:
    """Copy the string opened at ``index`` to ``out`` as a JSON string; return where it ends."""
    close = _QUOTE_CLOSE[text[index]]
    parts: list[str] = []
    index += 1
    while index < len(text) and text[index] != close:
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            parts.append("'" if following == "'" else char + following)  # \' is not a JSON escape
            index += 2
            continue
        parts.append('\\"' if char == '"' else char)  # a " inside a '...' or “...” string
        index += 1
    out.append('"' + "".join(parts) + '"')
    return index + 1


_THREAD_DONE = object()


async def stream_from_thread(pieces: Callable[[], Iterator[str]]) -> AsyncIterator[str]:
    """Run a blocking generator in a worker thread and yield its pieces without blocking the loop.

    When the consumer stops early, the thread is told to stop before its next piece, and is awaited,
    so a backend that is not thread-safe is never used by two calls at once.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    cancelled = threading.Event()

    def work() -> None:
        try:
            for piece in pieces():
                if cancelled.is_set():
                    break
                if piece:
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
        except Exception as exc:  # the backend's own errors reach the caller as LLMError
            error = exc if isinstance(exc, LLMError) else LLMError(f"{type(exc).__name__}: {exc}")
            loop.call_soon_threadsafe(queue.put_nowait, error)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _THREAD_DONE)

    worker = loop.run_in_executor(None, work)
    try:
        while True:
            item = await queue.get()
            if item is _THREAD_DONE:
                break
            if isinstance(item, LLMError):
                raise item
            yield item
    finally:
        cancelled.set()
        await asyncio.shield(worker)

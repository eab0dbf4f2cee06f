"""The one interface every language-model backend implements, and what they share.

A backend streams text for a list of messages. It may be asked for JSON that follows a schema (the
planner and the searcher's queries), to stop at stop words and to cap the reply length. Cancelling the
consumer of ``stream`` cancels the call. ``<think>`` sections of reasoning models are removed here,
once, for every backend.
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

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class ModelRequest:
    """Everything a backend is asked in one call; the scripted test model sees exactly this."""

    messages: list[Message]
    schema: type[BaseModel] | None = None
    stop: list[str] = field(default_factory=list)
    max_tokens: int | None = None

    @property
    def text(self) -> str:
        """All message contents joined: handy for assertions about what the model was shown."""
        return "\n".join(message.content for message in self.messages)

    def json_schema(self) -> dict[str, Any] | None:
        return None if self.schema is None else self.schema.model_json_schema()


class LLMError(RuntimeError):
    """A model call failed for good (after retries); the message says why in one line."""


class ChatModel(ABC):
    """A language model. Subclasses implement ``_stream``; callers use ``stream`` or ``complete``."""

    name: str = "model"
    style: Literal["chat", "base"] = "chat"

    def stream(
        self,
        messages: list[Message],
        *,
        schema: type[BaseModel] | None = None,
        stop: list[str] | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[str]:
        request = ModelRequest(list(messages), schema, list(stop or []), max_tokens)
        return strip_think(self._stream(request))

    async def complete(
        self,
        messages: list[Message],
        *,
        schema: type[BaseModel] | None = None,
        stop: list[str] | None = None,
        max_tokens: int | None = None,
    ) -> str:
        parts = [
            part async for part in self.stream(messages, schema=schema, stop=stop, max_tokens=max_tokens)
        ]
        return "".join(parts)

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


async def strip_think(pieces: AsyncIterator[str]) -> AsyncIterator[str]:
    """Drop ``<think>...</think>`` spans, even when a tag is split across pieces."""
    inside = False
    pending = ""
    try:
        async for piece in pieces:
            pending += piece
            out = []
            while pending:
                tag = _CLOSE if inside else _OPEN
                index = pending.find(tag)
                if index >= 0:
                    if not inside:
                        out.append(pending[:index])
                    pending = pending[index + len(tag) :]
                    inside = not inside
                    continue
                # keep a possible partial tag at the end for the next piece
                keep = _partial_suffix(pending, tag)
                if not inside:
                    out.append(pending[: len(pending) - keep])
                pending = pending[len(pending) - keep :] if keep else ""
                break
            text = "".join(out)
            if text:
                yield text
        if pending and not inside:
            yield pending
    finally:
        aclose = getattr(pieces, "aclose", None)
        if aclose is not None:
            await aclose()


def _partial_suffix(text: str, tag: str) -> int:
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """Parse the JSON object in a model reply: bare, fenced, or surrounded by prose. Never evaluates code."""
    text = text.strip()
    candidates = [text]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start = text.find("{")
    if start >= 0:
        candidates.append(_balanced_object(text[start:]))
    last_error: Exception | None = None
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return json.loads(candidate, strict=False)  # small models put raw newlines in strings
        except json.JSONDecodeError as exc:
            last_error = exc
    raise ValueError(f"the reply is not JSON ({last_error}): {text[:200]!r}")


def _balanced_object(text: str) -> str:
    depth, in_string, escaped = 0, False, False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[: index + 1]
    return text


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
            loop.call_soon_threadsafe(queue.put_nowait, LLMError(f"{type(exc).__name__}: {exc}"))
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

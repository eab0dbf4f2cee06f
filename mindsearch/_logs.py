"""Logging for the commands: quiet by default, ``-v`` for more, ``-vv`` for everything; JSON for a server.

What a run has to say reaches the user as events (rendered by the CLI, sent by the API); logs are for
the details behind them (an engine's raw exception, llama.cpp's own messages) and, for operators, one
structured record per run, node, model call, engine query and page fetch (``mindsearch._telemetry``).

Text (the commands' default): only mindsearch's warnings are shown, and libraries that talk a lot (ddgs,
primp, httpx, trafilatura, mcp, llama.cpp) only their errors. ``-v`` shows mindsearch's INFO lines and
the libraries' warnings, ``-vv`` everything at DEBUG, the telemetry records included.

JSON (``MINDSEARCH_LOG_FORMAT=json``, the default of ``mindsearch serve``): one JSON object per line on
stderr, ``{"ts", "level", "logger", "message"}`` or, for a telemetry record, ``{"ts", "level", "logger",
"event", "run_id", ...}``; mindsearch logs at INFO, so every run is told. ``MINDSEARCH_LOG_LEVEL`` sets
the level in either format. Every line is redacted: the keys of the settings, key-like words, and URLs'
user info and query never reach a log.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any, Literal

from ._telemetry.redact import drop_known, redact

# libraries whose INFO lines are chatter for a user: quiet unless -vv
CHATTY = (
    "ddgs",
    "primp",
    "httpx",
    "httpcore",
    "trafilatura",
    "htmldate",
    "courlan",
    "charset_normalizer",
    "mcp",
    "sse_starlette",
    "llama-cpp-python",
    "asyncio",
    "filelock",
    "urllib3",
)
TELEMETRY = "mindsearch.telemetry"  # the structured records: shown in JSON, or at -vv / a chosen level

FORMAT = "%(name)s: %(message)s"
LogFormat = Literal["text", "json"]
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

_state: dict[str, Any] = {"verbosity": 0, "format": "text", "level": "auto"}


class RedactingFormatter(logging.Formatter):
    """The text format, with secrets and URLs' user info and query taken out."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: a telemetry record's fields, or the message; always redacted."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "telemetry", None)
        if isinstance(fields, dict):
            data.update(fields)
        else:
            data["message"] = redact(record.getMessage())
        if record.exc_info:
            data["exception"] = redact(self.formatException(record.exc_info))
        # a record's text fields were redacted when it was made; its keys can still be anywhere
        return drop_known(json.dumps(data, ensure_ascii=False, default=str))


def configure(verbosity: int = 0, *, fmt: LogFormat | None = None, level: str | None = None) -> None:
    """Route every log line to stderr in ``fmt`` at the level ``verbosity`` (0, 1 or 2+) asks for, or at
    ``level`` (debug, info, warning, error; ``auto``: by ``verbosity``) when one is given. ``fmt`` and
    ``level`` left out keep what was configured before (the settings' choice, see ``apply_settings``).

    Called once by each command before anything else logs (and again by ``apply_settings`` once the
    settings are read); a library that later calls ``logging.basicConfig`` (the MCP SDK does, at INFO)
    finds the root logger configured and changes nothing.
    """
    fmt = fmt if fmt is not None else _state["format"]
    level = level if level is not None else _state["level"]
    _state.update(verbosity=verbosity, format=fmt, level=level)
    chosen = LEVELS.get((level or "").lower())
    if chosen is not None:
        own = telemetry = chosen
        others = chosen if chosen == logging.DEBUG else max(chosen, logging.WARNING)
    else:
        own = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
        others = logging.ERROR if verbosity <= 0 else logging.WARNING if verbosity == 1 else logging.DEBUG
        if fmt == "json":  # a server's log tells every run
            own, others = min(own, logging.INFO), min(others, logging.WARNING)
        telemetry = logging.INFO if fmt == "json" or verbosity >= 2 else logging.ERROR
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_mindsearch", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else RedactingFormatter(FORMAT))
    handler._mindsearch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(min(own, others, telemetry))
    logging.getLogger("mindsearch").setLevel(own)
    logging.getLogger(TELEMETRY).setLevel(telemetry)
    for name in CHATTY:
        logging.getLogger(name).setLevel(others)


def apply_settings(settings: Any, *, server: bool = False) -> None:
    """Configure again with the settings' ``log_format`` and ``log_level`` (``auto``: JSON at INFO for
    a server, the quiet text format for the other commands), keeping the ``-v`` count."""
    fmt = str(getattr(settings, "log_format", "auto"))
    level = str(getattr(settings, "log_level", "auto"))
    chosen: LogFormat = "json" if fmt == "json" or (fmt == "auto" and server) else "text"
    configure(int(_state["verbosity"]), fmt=chosen, level=level)


def is_json() -> bool:
    """Whether logs are written as JSON lines (then uvicorn's own lines go through them too)."""
    return bool(_state["format"] == "json")


def level_name(verbosity: int) -> str:
    """The level name for libraries that take one (uvicorn, the MCP SDK)."""
    return "WARNING" if verbosity <= 0 else "INFO" if verbosity == 1 else "DEBUG"

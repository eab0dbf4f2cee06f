"""Logging for the commands: quiet by default, ``-v`` for more, ``-vv`` for everything.

What a run has to say reaches the user as events (rendered by the CLI, sent by the API); logs are for
the details behind them (an engine's raw exception, llama.cpp's own messages). By default only
mindsearch's warnings are shown, and libraries that talk a lot (ddgs, primp, httpx, trafilatura, mcp,
llama.cpp) only their errors. ``-v`` shows mindsearch's INFO lines and the libraries' warnings, ``-vv``
everything at DEBUG.
"""

from __future__ import annotations

import logging
import sys

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

FORMAT = "%(name)s: %(message)s"


def configure(verbosity: int = 0) -> None:
    """Route every log line to stderr at the level ``verbosity`` (0, 1 or 2+) asks for.

    Called once by each command before anything else logs; a library that later calls
    ``logging.basicConfig`` (the MCP SDK does, at INFO) finds the root logger configured and changes
    nothing.
    """
    own = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    others = logging.ERROR if verbosity <= 0 else logging.WARNING if verbosity == 1 else logging.DEBUG
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_mindsearch", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler._mindsearch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(min(own, others))
    logging.getLogger("mindsearch").setLevel(own)
    for name in CHATTY:
        logging.getLogger(name).setLevel(others)


def level_name(verbosity: int) -> str:
    """The level name for libraries that take one (uvicorn, the MCP SDK)."""
    return "WARNING" if verbosity <= 0 else "INFO" if verbosity == 1 else "DEBUG"

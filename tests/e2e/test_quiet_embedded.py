"""Issue 9 with the real embedded model: a default `mindsearch ask` in a terminal shows no llama.cpp log
line (it used to print "llama_kv_cache_iswa: using full-size SWA cache ..." on every run)."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mindsearch.testing import clean_env

pytestmark = pytest.mark.model
QUESTION = "Which band was formed first, The Exies or Circus Diablo?"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_terminal(*args: str) -> tuple[int, str, str]:
    """The command with its stdout on a pseudo-terminal (rich draws its live view, as for a user) and
    its stderr on a pipe; returns the exit code, what the terminal showed, and stderr."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "mindsearch", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env={**clean_env(), "TERM": "xterm-256color", "COLUMNS": "160"},
    )
    os.close(slave)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert process.stderr is not None
    err = process.stderr.read().decode()
    code = process.wait(timeout=600)
    return code, ANSI.sub("", shown.decode(errors="replace")), err


async def test_a_default_run_in_a_terminal_shows_no_llama_cpp_log_line(tmp_path: Path) -> None:
    code, shown, err = await asyncio.to_thread(run_in_terminal, "ask", QUESTION, "--data-dir", str(tmp_path))
    assert code in (0, 1), shown + err
    assert "sub-question" in shown, shown  # the run got to its end
    assert "llama_" not in shown and "llama_" not in err, shown + err
    assert "ggml" not in shown + err and "Traceback" not in shown + err
    assert err == "", err


async def test_verbose_shows_llama_cpp_warnings_on_stderr(tmp_path: Path) -> None:
    code, shown, err = await asyncio.to_thread(
        run_in_terminal, "ask", QUESTION, "-v", "--depth", "quick", "--data-dir", str(tmp_path)
    )
    assert code in (0, 1), shown + err
    assert "mindsearch.llamacpp: llama_kv_cache_iswa" in err, err
    assert "llama_" not in shown, "logs go to stderr, never into the answer"

"""The terminal view never shows a secret an upstream error carried, and a closed pipe is not a crash."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from mindsearch import cli
from mindsearch import events as ev
from mindsearch.cli import LiveView


def test_an_error_line_does_not_show_a_url_password_or_a_key() -> None:
    out = io.StringIO()
    view = LiveView(Console(file=out, width=200, force_terminal=False))
    view.show(
        ev.Error(
            stage="llm",
            message="http://bob:hunter2@10.0.0.5:8000/v1/models lists no model (api_key=sk-abcdef123456)",
        )
    )
    view.close()
    text = out.getvalue()
    assert "llm error" in text and "10.0.0.5:8000/v1/models lists no model" in text
    assert "hunter2" not in text and "bob" not in text and "sk-abcdef123456" not in text


def test_schema_into_a_pipe_that_closes_early_exits_cleanly() -> None:
    shell = f"{sys.executable} -m mindsearch schema | head -1"
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {shell}"], capture_output=True, text=True)
    assert done.stdout.strip() == "{"
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr


def test_mcp_without_its_extra_names_the_mcp_extra_first(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "mcp" or name.startswith(("llama_cpp", "gemma3")) else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setenv("MINDSEARCH_DATA_DIR", str(tmp_path))
    assert cli.main(["mcp"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mindsearch: `mindsearch mcp` needs the MCP SDK: pip install 'mindsearch[mcp]'"]

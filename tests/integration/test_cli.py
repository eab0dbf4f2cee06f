"""The command line, run as a new process the way a user runs it, against a fake server on loopback."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mindsearch.cli import main
from mindsearch.events import event_json_schema, parse_event
from mindsearch.testing import FakeOpenAIServer, kind_of_body, plan_json

ROOT = Path(__file__).resolve().parents[2]


def handler(body: dict[str, Any]) -> Any:
    kind = kind_of_body(body)
    if kind == "plan":
        return plan_json(("q1", "Which band was formed first, The Exies or Circus Diablo?", []))
    if kind == "queries":
        return '{"queries": ["The Exies band formed", "Circus Diablo band formed"]}'
    if kind == "answer":
        return "The Exies were formed in 1997 [1]. Circus Diablo was formed in 2004 [2]."
    return "The Exies [1]."


async def run_cli(*args: str, data_dir: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mindsearch",
        *args,
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_ask_json_streams_events_that_validate_against_the_documented_schema(tmp_path: Path) -> None:
    schema = json.loads((ROOT / "docs" / "events.schema.json").read_text())
    async with FakeOpenAIServer(handler) as server:
        code, out, err = await run_cli(
            "ask",
            "Which band was formed first, The Exies or Circus Diablo?",
            "--json",
            *server.cli_flags(),
            data_dir=tmp_path,
        )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    for line in lines:
        jsonschema.validate(line, schema)
        parse_event(line)
    types = [line["type"] for line in lines]
    assert types[0] == "run_started" and types[-1] == "done"
    assert {
        "plan",
        "node_started",
        "queries",
        "search_results",
        "node_done",
        "answer_delta",
        "references",
    } <= set(types)
    done = lines[-1]
    assert done["answer"].startswith("The Exies") and done["references"][0]["url"].startswith(
        "https://en.wikipedia.org"
    )


async def test_ask_renders_dag_answer_and_references(tmp_path: Path) -> None:
    async with FakeOpenAIServer(handler) as server:
        code, out, err = await run_cli(
            "ask",
            "Which band was formed first, The Exies or Circus Diablo?",
            *server.cli_flags(),
            data_dir=tmp_path,
        )
    assert code == 0, err
    assert "q1: Which band was formed first" in out
    assert "The Exies were formed in 1997 [1]." in out and "References" in out
    assert re.search(r"^\[1\] .+ - https://en\.wikipedia\.org/wiki/", out, re.MULTILINE)


async def test_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    code, out, err = await run_cli(
        "ask",
        "Who wrote Dune?",
        "--llm",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--max-rounds",
        "1",
        data_dir=tmp_path,
    )
    assert code == 1
    assert "cannot reach the OpenAI-compatible server at http://127.0.0.1:9/v1" in out
    assert "Traceback" not in out + err


def test_bad_settings_exit_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "q", "--engine", "bing"]) == 2
    assert "unknown engine(s) ['bing']" in capsys.readouterr().err
    assert main(["ask", "q", "--max-nodes", "0"]) == 2


def test_documented_schema_is_the_one_the_code_emits() -> None:
    assert json.loads((ROOT / "docs" / "events.schema.json").read_text()) == event_json_schema()


def test_missing_optional_extra_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys as system

    monkeypatch.setitem(system.modules, "mcp", None)
    monkeypatch.setitem(system.modules, "mcp.server", None)
    monkeypatch.setitem(system.modules, "mcp.server.mcpserver", None)
    monkeypatch.setitem(system.modules, "mcp.server.fastmcp", None)
    assert main(["mcp"]) == 2
    assert "pip install 'mindsearch[mcp]'" in capsys.readouterr().err


def test_eval_with_a_missing_dataset_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path / "nope.json"), "--data-dir", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err

"""The command line's logs, run as a new process: quiet by default, one JSON line per record when asked."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mindsearch.testing import FakeOpenAIServer, kind_of_body, plan_json

KEY = "sk-clitest-0123456789"


def handler(body: dict[str, Any]) -> Any:
    kind = kind_of_body(body)
    if kind == "plan":
        return plan_json(("q1", "When was Pizza Hut founded?", []))
    if kind == "queries":
        return '{"queries": ["Pizza Hut founded"]}'
    return "Pizza Hut was founded in 1958 by Dan and Frank Carney [1]."


async def ask(server: FakeOpenAIServer, data_dir: Path, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mindsearch",
        "ask",
        "When was Pizza Hut founded?",
        "--json",
        *server.cli_flags(),
        "--llm-api-key",
        KEY,
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_ask_logs_nothing_by_default_and_json_lines_when_asked(tmp_path: Path) -> None:
    async with FakeOpenAIServer(handler) as server:
        code, out, err = await ask(server, tmp_path / "data")
        assert code == 0 and err.strip() == "", err  # quiet by default: the events say it all
        code, out, err = await ask(server, tmp_path / "data", MINDSEARCH_LOG_FORMAT="json")
    assert code == 0
    run_id = json.loads(out.splitlines()[0])["run_id"]
    lines = [json.loads(line) for line in err.splitlines()]
    records = [line for line in lines if "event" in line]
    assert {line["event"] for line in records} >= {"run", "node", "model_call", "engine_query"}
    assert all(line["run_id"] == run_id for line in records)
    (whole,) = [line for line in records if line["event"] == "run"]
    assert whole["outcome"] == "ok" and whole["llm"] == "openai:fake-model" and whole["model_calls"] >= 3
    assert KEY not in err and server.url not in err  # neither the key nor where the model runs

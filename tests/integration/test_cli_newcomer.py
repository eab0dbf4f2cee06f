"""Issue 9, the default path as a newcomer meets it: what `mindsearch ask` prints, run as a new process
the way a user runs it, against a fake OpenAI-compatible server on loopback.

Quiet, honest output: a plan the planner could not make is one dim note, not a red error; a follow-up's
rewrite (or its failure) is shown; a web engine that fails is one short line, not an exception dump;
counts are singular when they are one; every depth works; `-v` exists on every command.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from mindsearch.cli import build_parser, main
from mindsearch.testing import FakeOpenAIServer, clean_env, kind_of_body, plan_json

QUESTION = "Which band was formed first, The Exies or Circus Diablo?"
FOLLOW_UP = "Who founded it?"
REWRITTEN = "Who founded The Exies?"
TRACEBACK = re.compile(r"Traceback|File \".*\", line \d+")


def prompt(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []))


def make_handler(plan: str | None = None, rewrite: Any = REWRITTEN) -> Any:
    """Replies for every step; ``plan`` is the planner's reply (default: the question as one node)."""

    def handler(body: dict[str, Any]) -> Any:
        text = prompt(body)
        if "Standalone question" in text:
            return rewrite
        kind = kind_of_body(body)
        if kind == "plan":
            return plan if plan is not None else plan_json(("q1", QUESTION, []))
        if kind == "queries":
            return '{"queries": ["The Exies band formed", "Circus Diablo band formed"]}'
        if kind == "answer":
            return "The Exies were formed in 1997 [1]."
        return "The Exies were formed first, in 1997 [1]."

    return handler


async def run_cli(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mindsearch",
        *args,
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**clean_env(), "COLUMNS": "200", **(env or {})},
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def plans_asked(server: FakeOpenAIServer) -> int:
    return sum(1 for r in server.requests if kind_of_body(r.body) == "plan")


# --- 5: a plan that fell back to the question is one dim note, not a red error ----------------------
DUPLICATE_IDS = plan_json(
    ("q1", "When was The Exies formed?", []), ("q1", "When was Circus Diablo formed?", [])
)


async def test_a_plan_that_fell_back_is_one_note_not_an_error(tmp_path: Path) -> None:
    async with FakeOpenAIServer(make_handler(plan=DUPLICATE_IDS)) as server:
        code, out, err = await run_cli("ask", QUESTION, *server.cli_flags(), data_dir=tmp_path)
    assert code == 0, out + err
    notes = [line for line in out.splitlines() if line.startswith("planner:")]
    assert notes == ["planner: used the question as one sub-question"], out
    assert "error" not in out + err, out + err
    assert "duplicate id" not in out, "the detail is for -v"
    assert "q1: " + QUESTION in out
    assert not TRACEBACK.search(out + err)


async def test_verbose_shows_what_the_planner_got_wrong_once(tmp_path: Path) -> None:
    async with FakeOpenAIServer(make_handler(plan=DUPLICATE_IDS)) as server:
        code, out, err = await run_cli("ask", QUESTION, "-v", *server.cli_flags(), data_dir=tmp_path)
    assert code == 0, out + err
    [note] = [line for line in out.splitlines() if line.startswith("planner:")]
    assert note.startswith("planner: used the question as one sub-question (invalid plan")
    assert note.count("duplicate id 'q1'") == 1, note


async def test_the_json_stream_has_the_note_and_no_plan_error(tmp_path: Path) -> None:
    async with FakeOpenAIServer(make_handler(plan=DUPLICATE_IDS)) as server:
        code, out, err = await run_cli("ask", QUESTION, "--json", *server.cli_flags(), data_dir=tmp_path)
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert not [e for e in events if e["type"] == "error"]
    [plan] = [e for e in events if e["type"] == "plan"]
    assert plan["note"] == "used the question as one sub-question"
    assert "duplicate id 'q1'" in plan["recovered_from"]
    assert events[-1]["type"] == "done" and events[-1]["ok"]


# --- 8: plurals --------------------------------------------------------------------------------------
async def test_one_sub_question_is_singular(tmp_path: Path) -> None:
    async with FakeOpenAIServer(make_handler()) as server:
        code, out, err = await run_cli("ask", QUESTION, *server.cli_flags(), data_dir=tmp_path)
    assert code == 0, out + err
    assert re.search(r"^1 sub-question, \d+\.\d s$", out, re.MULTILINE), out
    assert "1 sub-questions" not in out


# --- 6: a follow-up's rewrite is shown, and so is its failure ------------------------------------------
async def test_a_follow_up_is_rewritten_and_the_rewrite_is_shown(tmp_path: Path) -> None:
    async with FakeOpenAIServer(make_handler()) as server:
        first = await run_cli("ask", QUESTION, "--session", "me", *server.cli_flags(), data_dir=tmp_path)
        assert first[0] == 0, first
        assert "follow-up" not in first[1], "a first question is not a follow-up"
        code, out, err = await run_cli(
            "ask", FOLLOW_UP, "--session", "me", *server.cli_flags(), data_dir=tmp_path
        )
        rewrites = [r for r in server.requests if "Standalone question" in r.prompt]
    assert code == 0, out + err
    assert f"follow-up rewritten: {REWRITTEN}" in out.splitlines(), out
    assert len(rewrites) == 1 and QUESTION in rewrites[0].prompt, "the first turn is the history"
    assert REWRITTEN in out.splitlines(), "the graph's root is the question as searched"


@pytest.mark.parametrize(
    ("reply", "why"),
    [("", "the model's rewrite was empty"), ((500, "model crashed"), "the model failed")],
    ids=["empty", "server-error"],
)
async def test_a_follow_up_that_cannot_be_rewritten_says_so(tmp_path: Path, reply: Any, why: str) -> None:
    async with FakeOpenAIServer(make_handler(rewrite=reply)) as server:
        await run_cli("ask", QUESTION, "--session", "s", *server.cli_flags(), data_dir=tmp_path)
        code, out, err = await run_cli(
            "ask", FOLLOW_UP, "--session", "s", *server.cli_flags(), data_dir=tmp_path
        )
        _code, json_out, _err = await run_cli(
            "ask", FOLLOW_UP, "--session", "s2", "--json", *server.cli_flags(), data_dir=tmp_path
        )
    assert code == 0, out + err
    [line] = [line for line in out.splitlines() if "follow-up" in line]
    assert line.startswith(f"the follow-up could not be rewritten ({why}")
    assert line.endswith("; searching it as asked")
    assert not TRACEBACK.search(out + err)
    started = json.loads(json_out.splitlines()[0])
    assert started["type"] == "run_started" and started["rewrite"] == "none", "a new session has no history"


async def test_the_json_stream_says_how_the_follow_up_was_rewritten(tmp_path: Path) -> None:
    async with FakeOpenAIServer(make_handler(rewrite="")) as server:
        await run_cli("ask", QUESTION, "--session", "s", *server.cli_flags(), data_dir=tmp_path)
        _code, out, _err = await run_cli(
            "ask", FOLLOW_UP, "--session", "s", "--json", *server.cli_flags(), data_dir=tmp_path
        )
    started = json.loads(out.splitlines()[0])
    assert started["rewrite"] == "failed" and started["rewrite_error"] == "the model's rewrite was empty"
    assert started["question"] == started["asked"] == FOLLOW_UP


def test_a_session_name_that_is_not_a_plain_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "q", "--session", "../../etc/x", "--data-dir", str(tmp_path)]) == 2
    assert "invalid setting session" in capsys.readouterr().err


# --- 7: a web engine that fails is one short line -----------------------------------------------------
async def test_a_web_engine_without_network_is_one_short_line(tmp_path: Path) -> None:
    # ddgs goes through a proxy on a closed loopback port: every request fails at once, offline
    env = {"DDGS_PROXY": "http://127.0.0.1:9"}
    async with FakeOpenAIServer(make_handler()) as server:
        code, out, err = await run_cli(
            "ask", QUESTION, "--engine", "local,duckduckgo", *server.cli_flags(), data_dir=tmp_path, env=env
        )
    assert code == 0, out + err
    said = [line for line in (out + err).splitlines() if "duckduckgo" in line and "engines:" not in line]
    assert said == ["duckduckgo: cannot connect; going on with local"], out + err
    for raw in ("DDGSException", "ConnectError", "Error(", "duckduckgo.com", "os error", "search error"):
        assert raw not in out + err, raw
    assert not TRACEBACK.search(out + err)
    assert "The Exies were formed" in out, "the run goes on with the local index"


async def test_verbose_logs_the_raw_engine_error(tmp_path: Path) -> None:
    env = {"DDGS_PROXY": "http://127.0.0.1:9"}
    async with FakeOpenAIServer(make_handler()) as server:
        code, out, err = await run_cli(
            "ask",
            QUESTION,
            "-v",
            "--engine",
            "local,duckduckgo",
            *server.cli_flags(),
            data_dir=tmp_path,
            env=env,
        )
    assert code == 0, out + err
    assert "mindsearch.search: duckduckgo failed for" in err and "Connection refused" in err, err
    assert not TRACEBACK.search(out + err)


# --- 4: every depth, and the per-run flags as RunOptions ---------------------------------------------
@pytest.mark.parametrize("depth", ["quick", "normal", "deep", None])
async def test_every_depth_answers(tmp_path: Path, depth: str | None) -> None:
    flags = ["--depth", depth] if depth else []
    async with FakeOpenAIServer(make_handler()) as server:
        code, out, err = await run_cli("ask", QUESTION, *flags, *server.cli_flags(), data_dir=tmp_path)
        planned = plans_asked(server)
    if depth == "deep":  # research mode: the fake writes no outline, so the standard one is used
        assert f"# {QUESTION}" in out and "## Overview" in out and "3 sub-questions" in out, out + err
        assert "The Exies were formed" in out and "References" in out and not TRACEBACK.search(out + err)
        return
    assert code == 0, out + err
    assert "The Exies were formed" in out and "References" in out
    assert f"q1: {QUESTION}" in out
    assert "error" not in out + err
    if depth == "quick":
        assert planned == 0, "quick searches the question as one sub-question, with no planner"
    else:
        assert planned >= 1


async def test_depth_goes_to_the_run_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    async with FakeOpenAIServer(make_handler()) as server:
        code, out, err = await run_cli(
            "ask",
            QUESTION,
            "--depth",
            "quick",
            "--max-nodes",
            "1",
            "--json",
            *server.cli_flags(),
            data_dir=tmp_path,
        )
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["added"] for e in events if e["type"] == "plan"] == [
        [{"id": "q1", "question": QUESTION, "depends_on": []}]
    ]
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["ask", "q", "--depth", "bottomless"])
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--engine", "bing"], "invalid setting engines: unknown engine(s) ['bing']"),
        (["--max-nodes", "0"], "invalid setting max_nodes: Input should be greater than or equal to 1"),
        (["--max-nodes", "101"], "invalid setting max_nodes: Input should be less than or equal to 100"),
        (["--engine", "searxng"], "needs MINDSEARCH_SEARXNG_URL"),
    ],
)
def test_per_run_flags_are_checked_as_run_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], said: str
) -> None:
    assert main(["ask", "q", *flags, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err


def test_ask_sends_its_per_run_flags_as_run_options() -> None:
    from mindsearch.cli import RUN_OPTION_FLAGS, options_from, settings_from

    args = build_parser().parse_args(
        ["ask", "q", "--depth", "deep", "--max-nodes", "3", "--engine", "local", "--llm", "openai"]
    )
    options = options_from(args)
    assert options.depth == "deep" and options.max_nodes == 3 and options.engines == ["local"]
    settings = settings_from(args, skip=RUN_OPTION_FLAGS)
    assert settings.llm == "openai" and settings.max_nodes == 8, "the engine keeps its own limits"
    assert options.apply(settings).max_nodes == 3


# --- 8: -v on every command ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [["ask", "q"], ["index", "x.txt"], ["schema"], ["serve"], ["eval", "d.json"], ["mcp"]],
    ids=lambda argv: argv[0],
)
def test_every_command_takes_verbose(argv: list[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(argv).verbose == 0
    assert parser.parse_args([*argv, "-v"]).verbose == 1
    assert parser.parse_args([*argv, "-vv"]).verbose == 2


def test_schema_stays_quiet_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    captured = capfd.readouterr()
    assert json.loads(captured.out)["title"].startswith("mindsearch event") and captured.err == ""

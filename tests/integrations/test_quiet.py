"""Issue 9: the agent integrations stay quiet. The README's lagent snippet (which never closes its
action) prints no "Unclosed client session" at exit, and an MCP search does not fill the client's log
with ddgs and SDK chatter. Real processes, real servers on loopback."""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path
from typing import Any

from mindsearch.testing import FakeOpenAIServer, clean_env, kind_of_body, plan_json

QUESTION = "Which band was formed first, The Exies or Circus Diablo?"


def reply(body: dict[str, Any]) -> Any:
    kind = kind_of_body(body)
    if kind == "plan":
        return plan_json(("q1", QUESTION, []))
    if kind == "queries":
        return '{"queries": ["The Exies", "Circus Diablo"]}'
    return "The Exies were formed in 1997 [1]."


# the README's snippet as a user pastes it, pointed at the fake server: no close() anywhere
SNIPPET = """
from mindsearch import Settings
from mindsearch.integrations.lagent import MindSearchAction

action = MindSearchAction(Settings(llm="openai", base_url="{base_url}"))
print(action('{{"query": "{question}"}}').result[0]["content"])
"""


async def run_python(code: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "always::ResourceWarning",  # shown, as a developer trying the snippet with -X dev sees them
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**clean_env(), **env},
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_readme_lagent_snippet_closes_its_sessions_at_exit(tmp_path: Path) -> None:
    async with FakeOpenAIServer(reply) as llm:
        code, out, err = await run_python(
            SNIPPET.format(base_url=f"{llm.url}/v1", question=QUESTION),
            {"MINDSEARCH_DATA_DIR": str(tmp_path)},
        )
    assert code == 0, err
    assert out.startswith("The Exies were formed in 1997 [1]."), out + err
    assert "Unclosed" not in err and "ResourceWarning" not in err, err


async def test_a_collected_sync_engine_closes_its_engine(tmp_path: Path) -> None:
    from mindsearch import MindSearch, Settings
    from mindsearch.integrations.bridge import SyncEngine

    closed: list[bool] = []

    class Watched(MindSearch):
        async def aclose(self) -> None:
            closed.append(True)
            await super().aclose()

    engine = SyncEngine(Watched(Settings(data_dir=tmp_path)))
    thread = engine._thread
    del engine
    gc.collect()
    await asyncio.to_thread(thread.join, 10)
    assert closed == [True] and not thread.is_alive()


async def test_an_mcp_search_with_a_failing_web_engine_writes_nothing_to_stderr(tmp_path: Path) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    log = tmp_path / "stderr.txt"
    async with FakeOpenAIServer(reply) as llm:
        params = StdioServerParameters(
            command=sys.executable,
            args=[
                "-m",
                "mindsearch",
                "mcp",
                *llm.cli_flags(),
                "--engine",
                "local,duckduckgo",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            # ddgs through a closed loopback port: each query fails at once, offline
            env={**clean_env(), "DDGS_PROXY": "http://127.0.0.1:9"},
        )
        with log.open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                result = await session.call_tool("search", {"question": QUESTION})
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("The Exies were formed in 1997 [1]."), text
    assert log.read_text() == "", log.read_text()[:3000]

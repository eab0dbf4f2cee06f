"""mindsearch inside other agent frameworks, called for real on loopback: MCP (lagent: test_lagent.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mindsearch.testing import FakeOpenAIServer, kind_of_body, plan_json

QUESTION = "Which band was formed first, The Exies or Circus Diablo?"


def reply(body: dict[str, Any]) -> Any:
    kind = kind_of_body(body)
    if kind == "plan":
        return plan_json(("q1", QUESTION, []))
    if kind == "queries":
        return '{"queries": ["The Exies", "Circus Diablo"]}'
    return "The Exies were formed in 1997 [1]."


async def test_mcp_server_over_stdio_answers_with_references(tmp_path: Path) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    async with FakeOpenAIServer(reply) as llm:
        params = StdioServerParameters(
            command=sys.executable,
            args=[
                "-m",
                "mindsearch",
                "mcp",
                *llm.cli_flags(),
                "--data-dir",
                str(tmp_path),
            ],
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("search", {"question": QUESTION})
    assert [tool.name for tool in tools.tools] == ["search"]
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("The Exies were formed in 1997 [1].")
    assert "[1] The Exies - https://en.wikipedia.org/wiki/The_Exies" in text

"""An MCP server over stdio with one tool, ``search``: ``mindsearch mcp`` (extra ``mcp``).

Settings come from the environment and flags as for every command, so an MCP client configures the
backend with ``MINDSEARCH_*`` variables. The server logs warnings only (``-v``, ``-vv`` for more): a
client shows the server's stderr, and one search used to write a hundred lines there. The engine's
sessions and model are closed when the server stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .. import _logs as logs
from .._errors import MissingExtra
from .._run import MindSearch
from ..settings import Settings
from .bridge import answer_text


def build_server(settings: Settings, engine: MindSearch | None = None, *, verbosity: int = 0) -> Any:
    server_class: Any
    try:
        from mcp.server.mcpserver import MCPServer  # mcp 2.x

        server_class = MCPServer
    except ImportError:
        try:
            import mcp.server.fastmcp as v1  # mcp 1.x

            server_class = getattr(v1, "FastMCP")  # noqa: B009 (mcp 2.x's module has no such name)
        except ImportError as exc:
            raise MissingExtra("`mindsearch mcp` needs the MCP SDK: pip install 'mindsearch[mcp]'") from exc

    search_engine = engine or MindSearch(settings)

    @asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if engine is None:  # one given by the caller is the caller's to close
                await search_engine.aclose()

    server = server_class(
        name="mindsearch",
        instructions="Search and answer with cited sources.",
        log_level=logs.level_name(verbosity),
        lifespan=lifespan,
    )

    async def search(question: str) -> str:
        """Answer ``question`` with citations; the reference list follows the answer."""
        answer = await search_engine.ask(question)
        return answer_text(answer)

    description = "Answer a question by searching, with [n] citations and a reference list."
    server.tool(name="search", description=description)(search)

    return server


def serve_stdio(settings: Settings, *, verbosity: int = 0) -> None:
    logs.configure(verbosity)  # before the SDK's own logging.basicConfig, which then changes nothing
    build_server(settings, verbosity=verbosity).run("stdio")

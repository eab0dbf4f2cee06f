"""mindsearch as a lagent 0.5 tool: a synchronous and an asynchronous action (extra ``lagent``).

lagent 0.5 pins ``pydantic==2.6.4``, so it is installed without its dependencies, after the extra that
brings what its modules import::

    pip install 'mindsearch[lagent]' && pip install --no-deps lagent==0.5.0rc2

``MindSearchAction`` is a ``lagent.actions.BaseAction`` for lagent's synchronous agents and
``ActionExecutor``; ``AsyncMindSearchAction`` (``AsyncActionMixin``) is for ``AsyncAgent``,
``AsyncAgentForInternLM`` and ``AsyncActionExecutor``. Both expose one API, ``run(query)``, described to
the model by lagent's ``tool_api`` from its docstring, and return an ``ActionReturn`` whose text is the
answer with its ``[n]`` citations, then its references as ``[n] title - url`` lines.

    from lagent.agents import AgentForInternLM
    agent = AgentForInternLM(llm=..., plugins=[MindSearchAction(Settings(llm="openai", base_url=...))])
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._errors import MissingExtra

try:
    from lagent.actions.base_action import AsyncActionMixin, BaseAction
    from lagent.actions.parser import BaseParser, JsonParser
    from lagent.schema import ActionReturn, ActionStatusCode
except ImportError as exc:  # pragma: no cover - exercised by the error test with lagent hidden
    raise MissingExtra(
        "mindsearch.integrations.lagent needs lagent 0.5: "
        "pip install 'mindsearch[lagent]' && pip install --no-deps lagent==0.5.0rc2"
    ) from exc

from .._run import Answer, MindSearch
from ..settings import Settings
from .bridge import SyncEngine, answer_text


def _returned(query: str, tool: str, answer: Answer | None, failure: str | None = None) -> Any:
    """The ActionReturn an agent gets: the cited answer and references as one text, or why there is none.

    Returned as is, so lagent's parser does not pass the text through GBK (which drops characters such
    as "ö" or emoji from answers and titles)."""
    args = {"query": query}
    if answer is not None and answer.text:
        return ActionReturn(args=args, type=tool, result=[{"type": "text", "content": answer_text(answer)}])
    reason = failure or (answer_text(answer) if answer is not None else "No answer: nothing was found")
    return ActionReturn(args=args, type=tool, errmsg=reason, state=ActionStatusCode.API_ERROR)


class MindSearchAction(BaseAction):  # type: ignore[misc]
    """Searches the web or the user's documents and answers a question with numbered citations."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: MindSearch | None = None,
        description: dict[str, Any] | None = None,
        parser: type[BaseParser] = JsonParser,
    ) -> None:
        super().__init__(description, parser)
        self._engine = SyncEngine(engine or MindSearch(settings or Settings()))

    def run(self, query: str) -> Any:
        """Answer a question by searching, with numbered citations such as [1] and a reference list.

        Args:
            query (str): the question to answer, in English or Chinese

        Returns:
            str: the answer with its citations, then its references as "[n] title - url" lines
        """
        try:
            answer = self._engine.ask(query)
        except TimeoutError as exc:  # the run was stopped; the agent gets a reason, not a traceback
            return _returned(query, self.name, None, f"No answer: {exc}")
        return _returned(query, self.name, answer)

    def close(self) -> None:
        self._engine.close()


class AsyncMindSearchAction(AsyncActionMixin, BaseAction):  # type: ignore[misc]
    """Searches the web or the user's documents and answers a question with numbered citations."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: MindSearch | None = None,
        description: dict[str, Any] | None = None,
        parser: type[BaseParser] = JsonParser,
    ) -> None:
        super().__init__(description, parser)
        self.engine = engine or MindSearch(settings or Settings())

    async def run(self, query: str) -> Any:
        """Answer a question by searching, with numbered citations such as [1] and a reference list.

        Args:
            query (str): the question to answer, in English or Chinese

        Returns:
            str: the answer with its citations, then its references as "[n] title - url" lines
        """
        settings = self.engine.settings
        try:  # the engine keeps its own deadlines; this one only guards against a run that hangs
            answer = await asyncio.wait_for(self.engine.ask(query), settings.total_timeout + 60)
        except asyncio.TimeoutError:  # not TimeoutError before Python 3.11
            reason = f"No answer: no answer within {settings.total_timeout + 60:g} s; the search was stopped"
            return _returned(query, self.name, None, reason)
        return _returned(query, self.name, answer)

    async def aclose(self) -> None:
        """Close the engine's sessions and model (on the loop the action ran on)."""
        await self.engine.aclose()

    async def __aenter__(self) -> AsyncMindSearchAction:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

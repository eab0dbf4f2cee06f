"""A lagent action that gives lagent agents mindsearch as a tool (extra ``lagent``, lagent 0.2.4 from PyPI).

from mindsearch.integrations.lagent import MindSearchAction
action = MindSearchAction(Settings(llm="openai", base_url="http://127.0.0.1:23333/v1"))
result = action('{"query": "Who directed Jaws?"}')   # an ActionReturn; result.result[0]["content"]
"""

from __future__ import annotations

from typing import Any

try:
    from lagent.actions.base_action import BaseAction
    from lagent.actions.parser import BaseParser, JsonParser
except ImportError as exc:  # pragma: no cover - exercised by the error test with lagent hidden
    raise ImportError(
        "mindsearch.integrations.lagent needs lagent: pip install 'mindsearch[lagent]'"
    ) from exc

from ..run import MindSearch
from ..settings import Settings
from .bridge import SyncEngine, answer_text


class MindSearchAction(BaseAction):  # type: ignore[misc]
    """Searches the web or the user's documents and answers a question with numbered citations."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: MindSearch | None = None,
        description: dict[str, Any] | None = None,
        parser: type[BaseParser] = JsonParser,
        enable: bool = True,
    ) -> None:
        super().__init__(description, parser, enable)
        self._engine = SyncEngine(engine or MindSearch(settings or Settings()))

    def run(self, query: str) -> str:
        """Answer a question by searching, with citations such as [1] and a reference list.

        Args:
            query (str): the question to answer, in English or Chinese

        Returns:
            str: the answer, then its references as "[n] title - url" lines
        """
        try:
            return answer_text(self._engine.ask(query))
        except TimeoutError as exc:  # the run was stopped; the agent gets a reason, not a traceback
            return f"No answer: {exc}"

    def close(self) -> None:
        self._engine.close()

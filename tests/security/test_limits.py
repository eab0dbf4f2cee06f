"""Limits that are not about one URL: pages per question, and no model output ever executed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from mindsearch import MindSearch, Settings
from mindsearch.search.base import SearchHit
from mindsearch.testing import MemoryEngine, ScriptedModel, kind_of, plan_json
from mindsearch.web.fetch import FetchedPage, Fetcher

PACKAGE = Path(__file__).resolve().parents[2] / "mindsearch"


class CountingFetcher(Fetcher):
    def __init__(self) -> None:
        self.urls: list[str] = []

    async def fetch(self, url: str) -> FetchedPage:
        self.urls.append(url)
        html = (
            "<html><body><article><p>"
            + "Mozilla was founded in 1998 by Netscape. " * 20
            + "</p></article></body></html>"
        )
        return FetchedPage(url, url, 200, "text/html", html)


async def test_pages_per_node_and_per_question_cap_what_is_fetched(tmp_path: Path) -> None:
    def hits(query: str) -> list[SearchHit]:  # each node's query finds pages of its own
        return [
            SearchHit(f"https://{query}.site{i}.example/page", f"Page {i}", "Mozilla", "web")
            for i in range(20)
        ]

    def reply(request: object) -> str:
        kind = kind_of(request)  # type: ignore[arg-type]
        if kind == "plan":
            return plan_json(*[(f"q{i}", f"Mozilla fact number {i}?", []) for i in range(4)])
        if kind == "queries":
            number = re.search(r"number (\d)", request.text)  # type: ignore[attr-defined]
            return f'{{"queries": ["mozilla{number.group(1) if number else 0}"]}}'
        return "Mozilla was founded in 1998 [1]."

    fetcher = CountingFetcher()
    settings = Settings(data_dir=tmp_path, pages_per_node=3, pages_per_question=7, cache_ttl=0)
    engine = MindSearch(
        settings, model=ScriptedModel(reply), engines=[MemoryEngine(hits, is_web=True)], fetcher=fetcher
    )
    events = [e async for e in engine.stream("Tell me four facts about Mozilla")]
    per_node: dict[str, int] = {}
    for event in events:
        if event.type == "page_read":
            per_node[event.node_id] = per_node.get(event.node_id, 0) + 1
    assert len(fetcher.urls) == 7, "no more pages than MINDSEARCH_PAGES_PER_QUESTION"
    assert max(per_node.values()) <= 3, "no more pages per node than MINDSEARCH_PAGES_PER_NODE"
    # a node left with snippets only ("Mozilla") cannot back its answer: it fails, honestly, and alone
    assert any(e.type == "node_done" and e.ok for e in events) and events[-1].type == "done"


def test_the_package_never_executes_text() -> None:
    """No exec, eval or compile anywhere in the package: model output is parsed as JSON, never run."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in {"exec", "eval", "compile", "__import__"}:
                    offenders.append(f"{path.name}:{node.lineno} {node.func.id}")
    assert not offenders

"""What a library user sees: only names ``mindsearch`` exports, enough to plug in a model and an engine.

This file imports nothing but ``mindsearch`` and its public submodules; a name that moves into a
private module (``mindsearch._*``) without being exported breaks it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import mindsearch
from mindsearch import (
    ChatModel,
    MindSearch,
    MindSearchError,
    ModelRequest,
    RunOptions,
    RunState,
    SearchEngine,
    SearchHit,
    Settings,
    events,
)

FACT = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."


class KeywordModel(ChatModel):
    """A model a user might write to wrap some service: it answers each step from the request alone."""

    name = "keyword"

    def __init__(self) -> None:
        self.schemas: list[str] = []

    async def _stream(self, request: ModelRequest) -> AsyncIterator[str]:
        schema = request.json_schema()
        title = (schema or {}).get("title", "")
        self.schemas.append(title or "text")
        if title == "PlanAction":
            node = {"id": "a", "question": "When was the Eiffel Tower completed?", "depends_on": []}
            yield json.dumps({"add": [node], "finish": True})
        elif schema is not None and "queries" in schema.get("properties", {}):
            yield json.dumps({"queries": ["Eiffel Tower completed"]})
        else:
            # a node answer and the final answer both: the fact, cited to the first source
            yield "The Eiffel Tower was completed in 1889 [1].\nShort answer: 1889"


class NotesEngine(SearchEngine):
    """A user's own search backend: hits that carry their text, so nothing is fetched."""

    name = "notes"
    is_web = False

    def __init__(self) -> None:
        self.queries: list[str] = []

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        self.queries.append(query)
        hit = SearchHit("https://notes.example/eiffel", "Eiffel Tower", FACT[:80], self.name, FACT)
        return [hit][:limit]


async def test_a_custom_model_and_engine_answer_through_public_names_only(tmp_path: Path) -> None:
    model, engine = KeywordModel(), NotesEngine()
    async with MindSearch(Settings(data_dir=tmp_path), model=model, engines=[engine]) as ms:
        state = RunState()
        async for event in ms.stream("When was the Eiffel Tower completed?", options=RunOptions()):
            assert events.parse_event(event.model_dump_json()) == event, "events travel as JSON"
            state.apply(event)
    assert state.ok, state.errors
    assert "1889" in state.answer and "[1]" in state.answer
    assert [ref.url for ref in state.references] == ["https://notes.example/eiffel"]
    assert engine.queries, "the custom engine was searched"
    assert "PlanAction" in model.schemas, "the custom model planned"


def test_everything_exported_exists_and_the_errors_share_one_root() -> None:
    for name in mindsearch.__all__:
        assert hasattr(mindsearch, name), name
    errors = [getattr(mindsearch, n) for n in mindsearch.__all__ if n.endswith(("Error", "Truncated", "URL"))]
    errors.append(mindsearch.MissingExtra)
    assert len(errors) >= 10
    for error in errors:
        assert issubclass(error, MindSearchError), error
    assert issubclass(mindsearch.MissingExtra, ImportError), "code catching ImportError keeps working"
    assert issubclass(mindsearch.OptionsError, ValueError)


@pytest.mark.parametrize("module", ["mindsearch.llm", "mindsearch.search", "mindsearch.web"])
def test_the_interface_packages_export_their_interfaces(module: str) -> None:
    package = importlib.import_module(module)
    assert package.__all__
    for name in package.__all__:
        assert getattr(package, name) is getattr(mindsearch, name, getattr(package, name)), name


def test_the_package_ships_its_type_information() -> None:
    assert (Path(mindsearch.__file__).parent / "py.typed").exists()

"""The synchronous bridge that agents (lagent, MCP) use: a call that times out stops its run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mindsearch import MindSearch, Settings
from mindsearch.integrations.bridge import SyncEngine
from mindsearch.llm.base import ModelRequest
from mindsearch.testing import MemoryEngine, ScriptedModel, doc_hit, kind_of


def test_a_timed_out_call_stops_its_run_and_every_task(tmp_path: Path) -> None:
    async def hang(request: ModelRequest) -> str:
        if kind_of(request) == "answer":
            await asyncio.sleep(60)
        if kind_of(request) == "queries":
            return '{"queries": ["jaws"]}'
        return '{"add": [{"id": "q1", "question": "Who directed Jaws?", "depends_on": []}], "finish": true}'

    model = ScriptedModel(hang)
    engine = MindSearch(
        Settings(data_dir=tmp_path), model=model, engines=[MemoryEngine([doc_hit("Jaws", "Jaws, 1975.")])]
    )
    bridge = SyncEngine(engine)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="stopped"):
        bridge.run(engine.ask("Who directed Jaws?"), timeout=0.5)
    assert time.monotonic() - started < 5
    assert not engine.active_runs, "the run went on after the caller's timeout"
    assert model.active == 0, "a model call went on after the caller's timeout"
    leftover = bridge.run(_other_tasks(), timeout=5)
    assert leftover == 0
    bridge.close()


async def _other_tasks() -> int:
    """Tasks on the bridge's loop besides this call and the bridge's own wrapper around it."""
    current = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    return sum(1 for t in others if not t.get_coro().__qualname__.endswith("run.<locals>.runner"))  # type: ignore[union-attr]

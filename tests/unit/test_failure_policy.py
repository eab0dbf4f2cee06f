"""One failure policy, tried on random graphs with faults injected at every stage (hypothesis).

Whatever fails (an LLMError, a bug, a hang, a CancelledError escaping from a step, the consumer
leaving), a run ends with exactly one ``done`` (or none, when the consumer left), no task is left
running, every finished sub-answer reaches the writer (or the answer itself, when the writer fails),
and ``ok`` is true exactly when nothing failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindsearch import MindSearch, Settings
from mindsearch.citations import strip_markers
from mindsearch.llm.base import LLMError, ModelRequest
from mindsearch.testing import MemoryEngine, ScriptedModel, doc_hit, kind_of
from tests.conftest import other_tasks

NAMES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]
DOCS = [doc_hit("Jaws (film)", "Jaws is a 1975 American thriller film directed by Steven Spielberg.")]
FAULTS = ["none", "llm", "bug", "cancel", "hang", "empty"]
QUESTION = "Summarise the reviewers' opinions of the shark movie."


@dataclass
class Scenario:
    deps: list[list[int]]  # per node, the earlier nodes it depends on
    rounds: int  # the plan is given over this many planner rounds
    planner_faults: list[str]
    node_faults: list[str]
    writer_fault: str
    stop_after: int | None  # the consumer leaves after this many events
    seen: dict[str, Any] = field(default_factory=dict)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(min_value=1, max_value=5))
    deps = [sorted(draw(st.sets(st.integers(0, i - 1), max_size=2))) if i else [] for i in range(count)]
    rounds = draw(st.integers(min_value=1, max_value=min(count, 2)))
    return Scenario(
        deps=deps,
        rounds=rounds,
        planner_faults=[draw(st.sampled_from(["none", "llm", "bug", "cancel"])) for _ in range(rounds)],
        node_faults=[draw(st.sampled_from(FAULTS)) for _ in range(count)],
        writer_fault=draw(st.sampled_from(["none", "llm", "bug", "cancel", "midway"])),
        stop_after=draw(st.one_of(st.none(), st.integers(min_value=1, max_value=25))),
    )


def fault(kind: str) -> Any:
    if kind == "llm":
        return LLMError("injected model failure")
    if kind == "bug":
        return ZeroDivisionError("injected bug")
    if kind == "cancel":
        return asyncio.CancelledError()
    return None


def handler(sc: Scenario) -> Any:
    chunks = [list(range(len(sc.deps)))[i :: sc.rounds] for i in range(sc.rounds)]
    chunks = [sorted(c) for c in chunks]
    # a node may only depend on nodes added in its round or before
    added_by: dict[int, int] = {n: r for r, chunk in enumerate(chunks) for n in chunk}
    rounds = iter(range(sc.rounds))

    async def reply(request: ModelRequest) -> Any:
        kind = kind_of(request)
        if kind == "plan":
            r = next(rounds, None)
            if r is None:
                return '{"add": [], "finish": true}'
            problem = fault(sc.planner_faults[r])
            if problem is not None:
                raise problem
            nodes = [
                {
                    "id": f"n{i}",
                    "question": f"What does {NAMES[i]} say about Jaws?",
                    "depends_on": [f"n{d}" for d in sc.deps[i] if added_by[d] <= r],
                }
                for i in chunks[r]
            ]
            return json.dumps({"add": nodes, "finish": r == sc.rounds - 1})
        if kind == "queries":
            return '{"queries": ["jaws director"]}'
        if kind == "answer":
            match = re.search(r"What does (\w+) say", request.text)
            assert match is not None
            index = NAMES.index(match.group(1))
            name = sc.node_faults[index]
            if name == "hang":
                await asyncio.sleep(30)
            if name == "empty":
                return ""
            problem = fault(name)
            if problem is not None:
                raise problem
            return f"{NAMES[index]} says Jaws was directed by Steven Spielberg [1]."
        sc.seen["writer"] = request.text
        if sc.writer_fault == "midway":
            return ["Jaws was directed ", LLMError("cut mid-stream")]
        problem = fault(sc.writer_fault)
        if problem is not None:
            raise problem
        return "Jaws was directed by Steven Spielberg [1]."

    return reply


class Model(ScriptedModel):
    """A scripted model whose list replies may hold an exception to raise mid-stream."""

    def __init__(self, sc: Scenario) -> None:
        inner = handler(sc)

        async def outer(request: ModelRequest) -> Any:
            reply = await inner(request)
            if isinstance(reply, list) and any(isinstance(p, Exception) for p in reply):
                return _pieces_then_raise(reply)
            return reply

        super().__init__(outer)


def _pieces_then_raise(reply: list[Any]) -> Any:
    class Raising(list):  # type: ignore[type-arg]
        def __iter__(self) -> Any:
            for piece in reply:
                if isinstance(piece, Exception):
                    raise piece
                yield piece

    return Raising(reply)


@given(scenarios())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_graphs_with_faults_end_with_one_done_no_task_and_no_lost_answer(sc: Scenario) -> None:
    asyncio.run(_check(sc))


async def _check(sc: Scenario) -> None:
    config = Settings(data_dir="data", node_timeout=0.2, total_timeout=20, max_nodes=8, max_rounds=3)
    engine = MindSearch(config, model=Model(sc), engines=[MemoryEngine(DOCS)])
    events: list[Any] = []
    async with contextlib.aclosing(engine.stream(QUESTION)) as stream:
        async for event in stream:
            events.append(event)
            if sc.stop_after is not None and len(events) >= sc.stop_after:
                break
    await asyncio.sleep(0)
    assert not other_tasks(), "a task was left running"
    await engine.aclose()
    types = [e.type for e in events]
    left = sc.stop_after is not None and len(events) >= sc.stop_after and "done" not in types
    if left:
        return
    assert types.count("done") == 1 and types[-1] == "done", types
    done = events[-1]
    finished = [e for e in events if e.type == "node_done" and e.ok]
    writer_prompt = strip_markers(sc.seen.get("writer", ""))
    for node in finished:
        said = strip_markers(node.answer).strip()
        assert said in writer_prompt, f"{node.node_id}'s answer did not reach the writer"
        if sc.writer_fault in ("llm", "bug", "cancel"):  # the writer gave nothing: the answers are the answer
            assert said in strip_markers(done.answer), f"{node.node_id}'s answer was lost"
    failed = [e for e in events if e.type == "node_done" and not e.ok]
    if done.ok:
        assert finished and not failed, "ok with a failed sub-question"
        assert sc.writer_fault == "none"
    planned = {n.id for e in events if e.type == "plan" for n in e.added}
    all_fine = (
        sc.writer_fault == "none"
        and all(f == "none" for f in sc.node_faults)
        and all(f == "none" for f in sc.planner_faults)
        and len(planned) == len(sc.deps)
    )
    if all_fine:
        assert done.ok, [e for e in events if e.type == "error"]


def test_the_scenario_machinery_can_fail_a_run() -> None:
    """The property above must see failures, or it proves nothing: a broken writer is not ok."""
    sc = Scenario(
        deps=[[]],
        rounds=1,
        planner_faults=["none"],
        node_faults=["none"],
        writer_fault="bug",
        stop_after=None,
    )

    async def run() -> Any:
        engine = MindSearch(Settings(data_dir="data"), model=Model(sc), engines=[MemoryEngine(DOCS)])
        events = [e async for e in engine.stream(QUESTION)]
        await engine.aclose()
        return events[-1]

    done = asyncio.run(run())
    assert not done.ok and "Alpha says" in done.answer

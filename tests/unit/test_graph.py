from __future__ import annotations

import pytest
from pydantic import ValidationError

from mindsearch._graph import NodeState, PlanAction, PlanError, QuestionGraph, SubQuestion


def sub(id_: str, deps: list[str] | None = None) -> SubQuestion:
    return SubQuestion(id=id_, question=f"question {id_}?", depends_on=deps or [])


def test_diamond_is_added_in_topological_order() -> None:
    graph = QuestionGraph(max_nodes=8)
    graph.add([sub("c", ["a", "b"]), sub("a"), sub("b")])
    assert [n.id for n in graph.nodes] == ["a", "b", "c"]
    assert [n.id for n in graph.ready()] == ["a", "b"]


def test_node_is_ready_only_when_every_parent_finished() -> None:
    graph = QuestionGraph(max_nodes=8)
    graph.add([sub("a"), sub("b"), sub("c", ["a", "b"])])
    graph.node("a").state = NodeState.DONE
    assert [n.id for n in graph.ready()] == ["b"]
    graph.node("b").state = NodeState.FAILED  # a failed parent does not block its child
    assert [n.id for n in graph.ready()] == ["c"]


@pytest.mark.parametrize(
    ("additions", "message"),
    [
        ([sub("a", ["a"])], "depends on itself"),
        ([sub("a", ["zz"])], "unknown id 'zz'"),
        ([sub("a", ["b"]), sub("b", ["a"])], "cycle"),
        ([sub("a"), sub("a")], "duplicate id"),
        ([sub(f"n{i}") for i in range(4)], "too many"),
    ],
)
def test_invalid_additions_are_refused_and_change_nothing(additions: list[SubQuestion], message: str) -> None:
    graph = QuestionGraph(max_nodes=3)
    with pytest.raises(PlanError, match=message):
        graph.add(additions)
    assert len(graph) == 0


def test_cycle_through_existing_nodes_is_refused() -> None:
    graph = QuestionGraph(max_nodes=8)
    graph.add([sub("a")])
    with pytest.raises(PlanError, match="duplicate"):
        graph.add([sub("a", ["b"])])
    graph.add([sub("b", ["a"])])
    assert len(graph) == 2


def test_ids_are_case_insensitive() -> None:
    action = PlanAction.model_validate({"add": [{"id": "Q1", "question": "x?", "depends_on": ["Q0"]}]})
    assert action.add[0].id == "q1" and action.add[0].depends_on == ["q0"]


def test_schema_refuses_extra_fields_and_bad_ids() -> None:
    with pytest.raises(ValidationError):
        PlanAction.model_validate({"add": [{"id": "has space", "question": "x"}]})
    with pytest.raises(ValidationError):
        PlanAction.model_validate({"add": [], "finish": True, "code": "import os"})

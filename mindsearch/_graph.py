"""The sub-question graph: a networkx DAG with the rules a plan must keep.

A planner action is checked here before anything runs: ids are unique and well formed, dependencies
name known nodes (or nodes added in the same action), no node depends on itself, the graph stays
acyclic, and it never exceeds ``max_nodes``. A rejected action changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._errors import MindSearchError


class PlanError(MindSearchError, ValueError):
    """A planner action that breaks a rule of the graph; the message is shown to the model for repair."""


class SubQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,32}$", description="Short unique id, e.g. q1.")
    question: str = Field(min_length=1, max_length=500)
    depends_on: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("id")
    @classmethod
    def _lower_id(cls, value: str) -> str:
        return value.lower()  # ids are case-insensitive: "Q2" and "q2" name one node

    @field_validator("question")
    @classmethod
    def _has_words(cls, value: str) -> str:
        if not any(char.isalnum() for char in value):
            raise ValueError("a sub-question needs words, not only punctuation")
        return value.strip()

    @field_validator("depends_on")
    @classmethod
    def _lower_deps(cls, value: list[str]) -> list[str]:
        return [item.strip().lower() for item in value]


class PlanAction(BaseModel):
    """What the planner returns each round: sub-questions to add, and/or that the plan is finished."""

    model_config = ConfigDict(extra="forbid")
    add: list[SubQuestion] = Field(default_factory=list, max_length=20)
    finish: bool = False


class NodeState(str, Enum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Node:
    id: str
    question: str
    depends_on: list[str]
    state: NodeState = NodeState.WAITING
    answer: str = ""
    short_answer: str = ""  # a few words: what ``#k`` in a dependent sub-question becomes
    error: str | None = None
    sources: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state in (NodeState.DONE, NodeState.FAILED)


class QuestionGraph:
    """Sub-questions and their dependencies; edges point from a parent to the node that needs it."""

    def __init__(self, max_nodes: int) -> None:
        self.max_nodes = max_nodes
        self.dag: nx.DiGraph = nx.DiGraph()

    def __len__(self) -> int:
        return int(self.dag.number_of_nodes())

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.dag

    def node(self, node_id: str) -> Node:
        node: Node = self.dag.nodes[node_id]["node"]
        return node

    @property
    def nodes(self) -> list[Node]:
        """Nodes in a topological order (parents first), ties in insertion order."""
        order = list(nx.lexicographical_topological_sort(self.dag, key=self._insertion_key))
        return [self.node(node_id) for node_id in order]

    def _insertion_key(self, node_id: str) -> str:
        return f"{self.dag.nodes[node_id]['order']:06d}"

    def parents(self, node_id: str) -> list[Node]:
        return [self.node(p) for p in sorted(self.dag.predecessors(node_id), key=self._insertion_key)]

    def check(self, additions: list[SubQuestion]) -> None:
        """Raise PlanError if adding these sub-questions would break a rule; change nothing."""
        seen: set[str] = set()
        for sub in additions:
            if sub.id in self.dag or sub.id in seen:
                raise PlanError(f"duplicate id {sub.id!r}: every sub-question needs a new, unique id")
            seen.add(sub.id)
        if len(self.dag) + len(additions) > self.max_nodes:
            raise PlanError(
                f"too many sub-questions: the graph holds {len(self.dag)} and may hold at most "
                f"{self.max_nodes}, so add at most {self.max_nodes - len(self.dag)}"
            )
        trial = self.dag.copy()
        for sub in additions:
            trial.add_node(sub.id)
        for sub in additions:
            for parent in sub.depends_on:
                if parent == sub.id:
                    raise PlanError(f"{sub.id!r} depends on itself")
                if parent not in trial:
                    raise PlanError(f"{sub.id!r} depends on unknown id {parent!r}")
                trial.add_edge(parent, sub.id)
        if not nx.is_directed_acyclic_graph(trial):
            cycle = nx.find_cycle(trial)
            path = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
            raise PlanError(f"the dependencies form a cycle: {path}")

    def add(self, additions: list[SubQuestion]) -> list[Node]:
        """Check, then add; returns the new nodes."""
        self.check(additions)
        added = []
        for sub in additions:
            node = Node(
                id=sub.id, question=sub.question.strip(), depends_on=list(dict.fromkeys(sub.depends_on))
            )
            self.dag.add_node(sub.id, node=node, order=len(self.dag))
            added.append(node)
        for node in added:
            for parent in node.depends_on:
                self.dag.add_edge(parent, node.id)
        return added

    def ready(self) -> list[Node]:
        """Waiting nodes whose parents have all finished (a failed parent does not block its children)."""
        return [
            node
            for node in self.nodes
            if node.state is NodeState.WAITING and all(p.finished for p in self.parents(node.id))
        ]

    @property
    def all_finished(self) -> bool:
        return all(node.finished for node in self.nodes)

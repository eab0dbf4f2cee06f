"""The planner: one round turns the question and the graph so far into one validated ``PlanAction``.

The model's reply is parsed as JSON and validated with pydantic and the graph's rules; nothing in it is
ever executed. An invalid reply gets one repair round that shows the model the error. Sub-questions
that only repeat the question or an existing node are folded away, so a weak model that echoes the
question yields an honest one-node plan instead of a fake decomposition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from ._graph import PlanAction, PlanError, QuestionGraph, SubQuestion
from ._prompts import render
from ._text import quoted, similarity, tokens
from .citations import strip_markers
from .llm.base import ChatModel, LLMError, Message, extract_json

ECHO_SIMILARITY = 0.6
DUPLICATE_SIMILARITY = 0.85
REPAIRED = "repaired after one round"  # the plan event's note for a reply the repair round fixed
FELL_BACK = "used the question as one sub-question"  # ... for a first round with no valid plan
BY_RULE = "split the question by rule"  # ... for a weak model's first plan, invalid or only the question


@dataclass
class PlanOutcome:
    """A round's plan, or why there is none. ``note`` says in a few words how a bad reply was recovered
    from, and ``recovered_from`` what was wrong with it (both empty for a plan valid at once)."""

    action: PlanAction | None
    error: str | None = None
    note: str = ""
    recovered_from: str = ""


class Planner:
    def __init__(
        self,
        model: ChatModel,
        *,
        style: Literal["chat", "base"],
        language: Literal["en", "zh"],
        max_rounds: int,
        max_tokens: int,
    ) -> None:
        self.model = model
        self.style = style
        self.language = language
        self.max_rounds = max_rounds
        self.max_tokens = max_tokens

    async def plan(
        self, question: str, graph: QuestionGraph, round_no: int, history: str = ""
    ) -> PlanOutcome:
        messages = render(
            "planner",
            style=self.style,
            language=self.language,
            question=question,
            history=history,
            graph=describe_graph(graph, self.style),
            round=str(round_no),
            max_rounds=str(self.max_rounds),
            room=str(max(graph.max_nodes - len(graph), 0)),
        )
        first_error = ""
        for attempt in range(2):
            try:
                reply = await self.model.complete(messages, schema=PlanAction, max_tokens=self.max_tokens)
            except LLMError as exc:
                return PlanOutcome(None, f"the planner model failed: {exc}")
            try:
                action = self._validate(reply, question, graph)
            except (ValueError, ValidationError, PlanError) as exc:
                error = short_error(exc)
                if attempt == 0:
                    first_error = error
                    messages = [
                        *messages,
                        Message("assistant", reply),
                        *render("repair", style=self.style, language=self.language, error=error),
                    ]
                    continue
                before = f" (before the repair: {first_error})" if first_error != error else ""
                return PlanOutcome(None, f"invalid plan, also after a repair round: {error}{before}")
            if first_error:
                return PlanOutcome(action, note=REPAIRED, recovered_from=first_error)
            return PlanOutcome(action)
        raise AssertionError("unreachable")

    def _validate(self, reply: str, question: str, graph: QuestionGraph) -> PlanAction:
        action = PlanAction.model_validate(extract_json(reply))
        action = fold_echoes(action, question, graph, off_topic=self.style == "base")
        graph.check(action.add)
        return action


def fold_echoes(
    action: PlanAction, question: str, graph: QuestionGraph, *, off_topic: bool = False
) -> PlanAction:
    """Remove what adds nothing: repeats of existing or earlier nodes and, with ``off_topic`` (for small base
    models, which ramble), sub-questions that share no word with the question or the answers so far.
    An echo-only first plan becomes one node."""
    existing = {node.id: node.question for node in graph.nodes}
    known = " ".join([question, *(f"{n.question} {n.answer}" for n in graph.nodes)])
    known_tokens = set(tokens(known))
    renamed: dict[str, str] = {}
    kept: list[SubQuestion] = []
    for sub in action.add:
        if sub.id in existing:  # a duplicate id is an error the model must repair, not fold
            kept.append(sub)
            continue
        twin = next(
            (nid for nid, text in existing.items() if similarity(text, sub.question) >= DUPLICATE_SIMILARITY),
            None,
        )
        if twin is not None:
            renamed[sub.id] = twin
            continue
        if off_topic and not set(tokens(sub.question)) & known_tokens:
            continue
        existing[sub.id] = sub.question
        kept.append(sub)
    kept_ids = {sub.id for sub in kept} | {node.id for node in graph.nodes}
    pruned = []
    for sub in kept:
        deps = [renamed.get(d, d) for d in sub.depends_on]
        # a dependency on a dropped off-topic node is dropped with it; unknown ids stay, to be reported
        deps = [d for d in deps if d in kept_ids or d not in {s.id for s in action.add}]
        pruned.append(sub.model_copy(update={"depends_on": list(dict.fromkeys(deps))}))
    if len(graph) == 0 and all(similarity(sub.question, question) >= ECHO_SIMILARITY for sub in pruned):
        return PlanAction(add=[SubQuestion(id="q1", question=question)], finish=True)
    return PlanAction(add=pruned, finish=action.finish)


def only_echoes(action: PlanAction, question: str) -> bool:
    """Whether a plan is the question and nothing else (what ``fold_echoes`` leaves of an echo)."""
    return len(action.add) == 1 and similarity(action.add[0].question, question) >= ECHO_SIMILARITY


def describe_graph(graph: QuestionGraph, style: str) -> str:
    if len(graph) == 0:
        return "(empty)" if style == "chat" else "nothing yet"
    lines = []
    for node in graph.nodes:
        deps = f" (after {', '.join(node.depends_on)})" if node.depends_on else ""
        if node.state.value == "done":
            answer = strip_markers(node.answer).strip() or "(no answer)"
            lines.append(f"- {node.id}{deps}: {node.question} -> {quoted(answer)}")
        elif node.state.value == "failed":
            lines.append(f"- {node.id}{deps}: {node.question} -> (failed: {node.error})")
        else:
            lines.append(f"- {node.id}{deps}: {node.question} -> ({node.state.value})")
    return "\n".join(lines)


def short_error(exc: Exception) -> str:
    """An invalid reply's error in a line: what the repair round shows the model, and the run's note."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            where = ".".join(str(p) for p in err["loc"]) or "reply"
            parts.append(f"{where}: {err['msg']}")
        return "; ".join(parts)
    return str(exc).splitlines()[0][:300]

"""What eval scores: a short answer, not a sentence; withheld answers and uncited answers count."""

from __future__ import annotations

import json
from pathlib import Path

from mindsearch import events as ev
from mindsearch._evaluation import (
    contains,
    scored_answer,
    summarize,
    summary_markdown,
    withheld,
)
from mindsearch._writer import not_found
from mindsearch.state import RunState

REF = ev.Reference(n=1, title="Jaws", url="doc://jaws")


def state(
    answer: str, nodes: list[tuple[str, list[str], str]], question: str = "Who directed Jaws?"
) -> RunState:
    """A finished run: ``nodes`` are (id, depends_on, short answer), all done."""
    events: list[ev.Event] = [
        ev.RunStarted(asked=question, question=question, language="en", llm="x", engines=["local"]),
        ev.Plan(
            round=1,
            added=[ev.PlannedNode(id=i, question=f"step {i}", depends_on=d) for i, d, _ in nodes],
            finish=True,
        ),
    ]
    for node_id, _deps, short in nodes:
        events.append(ev.NodeDone(node_id=node_id, ok=True, answer="...", references=[], short_answer=short))
    events.append(ev.Done(answer=answer, references=[REF], nodes=[], seconds=1.0, ok=True))
    return RunState.from_events(events)


def test_a_one_node_run_is_scored_by_its_short_answer() -> None:
    run = state("Jaws was directed by Steven Spielberg [1].", [("q1", [], "Steven Spielberg")])
    assert scored_answer(run) == "Steven Spielberg"


def test_a_multi_node_run_is_scored_by_its_last_step() -> None:
    nodes = [("q1", [], "The Exies"), ("q2", [], "Circus Diablo"), ("q3", ["q1", "q2"], "The Exies")]
    assert scored_answer(state("The Exies formed first [1].", nodes)) == "The Exies"
    chain = [("q1", [], "Steven Spielberg"), ("q2", ["q1"], "Cincinnati")]
    assert scored_answer(state("He was born in Cincinnati [1].", chain)) == "Cincinnati"


def test_yes_no_and_names_when_no_step_gave_a_short_answer() -> None:
    assert scored_answer(state("Yes, both are film directors [1].", [("q1", [], "")])) == "yes"
    guessed = state("Jaws was directed by Steven Spielberg [1].", [("q1", [], "")])
    assert scored_answer(guessed) == "Steven Spielberg"


def test_a_withheld_answer_scores_nothing() -> None:
    for language in ("en", "zh"):
        run = state(not_found(language), [("q1", [], "Steven Spielberg")])  # type: ignore[arg-type]
        assert withheld(run.answer) and scored_answer(run) == ""
    assert withheld("") and not withheld("Steven Spielberg [1].")


def test_contains_is_whole_words_after_normalisation() -> None:
    assert contains("It was directed by Steven Spielberg [1].", "steven spielberg") == 1.0
    assert contains("The Exies formed in 1997.", "The Exies") == 1.0
    assert contains("Spielbergian style", "Spielberg") == 0.0


def test_citation_precision_counts_every_answer_and_says_how_many_cite(tmp_path: Path) -> None:
    rows = [
        {
            "id": "1",
            "citation_precision": 1.0,
            "citation_precision_cited": 1.0,
            "withheld": False,
            "ok": True,
        },
        {
            "id": "2",
            "citation_precision": 0.0,
            "citation_precision_cited": None,
            "withheld": True,
            "ok": False,
        },
        {
            "id": "3",
            "citation_precision": 0.5,
            "citation_precision_cited": 0.5,
            "withheld": False,
            "ok": True,
        },
    ]
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps({"em": 0.0, "f1": 0.0, **r}) + "\n" for r in rows))
    summary = summarize(results)
    assert summary["citation_precision"] == 0.5  # (1 + 0 + 0.5) / 3: the withheld answer counts 0
    assert summary["citation_precision_cited"] == 0.75 and summary["cited"] == 2
    assert summary["withheld"] == 1 and summary["answered"] == 2
    table = summary_markdown(summary, "t")
    assert "0.500 (0.750, 2)" in table and "| 3 | 2 | 1 |" in table

"""Answer and retrieval metrics against hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mindsearch._evaluation import (
    best_over,
    exact_match,
    f1_score,
    load_dataset,
    normalize_answer,
    oracle_plan,
    precision,
    recall,
    short_answer,
    summarize,
)


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Exies", "exies"),
        ("  G. Stanley   Hall! ", "g stanley hall"),
        ("An apple, a pear", "apple pear"),
        ("theatre", "theatre"),
    ],
)
def test_normalisation_follows_hotpotqa(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


def test_exact_match() -> None:
    assert exact_match("the Exies.", "Exies") == 1.0
    assert exact_match("The Exies band", "The Exies") == 0.0


def test_f1_by_hand() -> None:
    # prediction "stanley hall psychologist" vs gold "g stanley hall": 2 common tokens,
    # precision 2/3, recall 2/3 -> F1 2/3
    assert f1_score("Stanley Hall, psychologist", "G. Stanley Hall") == pytest.approx(2 / 3)
    # "in 1997" vs "1997": precision 1/2 (the "in" is extra), recall 1 -> F1 2/3
    assert f1_score("in 1997", "1997") == pytest.approx(2 / 3)
    assert f1_score("nothing shared", "G. Stanley Hall") == 0.0


def test_yes_no_must_match_exactly() -> None:
    assert f1_score("yes", "no") == 0.0
    assert f1_score("yes it is", "yes") == 0.0
    assert f1_score("yes", "yes") == 1.0


def test_aliases_take_the_best() -> None:
    assert best_over(exact_match, "Stanley Hall", ["G. Stanley Hall", "Stanley Hall"]) == 1.0


def test_recall_and_citation_precision_by_hand() -> None:
    assert recall({"a", "b", "x"}, {"a", "b", "c"}) == pytest.approx(2 / 3)
    assert recall(set(), set()) is None
    assert precision(["a", "x", "y", "b"], {"a", "b"}) == 0.5
    assert precision([], {"a"}) is None


def test_short_answer_removes_citations() -> None:
    assert short_answer("The Exies [1][2].") == "The Exies."


def test_loading_musique_keeps_gold_paragraphs_and_the_decomposition(shared: Path) -> None:
    dataset = load_dataset(shared / "hipporag_v1/musique_train.json")
    first = dataset.items[0]
    assert first.answers == ["G. Stanley Hall", "Stanley Hall"]
    assert len(first.gold) == 2
    gold_titles = {d.title for d in dataset.documents if d.url in first.gold}
    assert gold_titles == {"Journal of Psychotherapy Integration", "Adolescence"}
    assert first.plan is not None and [s.depends_on for s in first.plan] == [[], ["q1"]]
    assert len(dataset.documents) <= 2000  # paragraphs shared by questions are indexed once


def test_loading_hotpotqa_marks_supporting_titles_gold(shared: Path) -> None:
    dataset = load_dataset(shared / "hipporag_v1/hotpotqa_train.json")
    item = dataset.items[0]
    assert item.answers == ["a spirit"] and len(item.gold) == 2 and item.plan is None


def test_plain_jsonl_needs_a_corpus(tmp_path: Path) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text(json.dumps({"question": "q?", "answer": "a"}) + "\n")
    with pytest.raises(ValueError, match="--corpus"):
        load_dataset(data)
    corpus = tmp_path / "c.txt"
    corpus.write_text("some text")
    assert len(load_dataset(data, [corpus]).documents) == 1


def test_oracle_plan_reads_hash_references() -> None:
    row = {
        "question_decomposition": [
            {"question": "Who wrote X?"},
            {"question": "Where was #1 born?"},
            {"question": "When did #2 and #1 meet?"},
        ]
    }
    plan = oracle_plan(row)
    assert plan is not None and [s.depends_on for s in plan] == [[], ["q1"], ["q1", "q2"]]


def test_summary_means_skip_missing_values(tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    rows = [
        {
            "id": "1",
            "em": 1.0,
            "f1": 1.0,
            "gold_recall": 0.5,
            "citation_precision": None,
            "nodes": 2,
            "seconds": 3.0,
            "ok": True,
        },
        {
            "id": "2",
            "em": 0.0,
            "f1": 0.5,
            "gold_recall": 1.0,
            "citation_precision": 1.0,
            "nodes": 1,
            "seconds": 1.0,
            "ok": False,
        },
    ]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = summarize(results)
    assert summary["em"] == 0.5 and summary["f1"] == 0.75 and summary["gold_recall"] == 0.75
    assert summary["citation_precision"] == 1.0 and summary["answered"] == 1 and summary["nodes"] == 1.5

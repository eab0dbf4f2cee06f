"""Tiny runs of the retrieval ablation and the quality table, with no model: the scripts work."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import quality, retrieval
from mindsearch._evaluation import load_dataset, summarize, summary_cells

PARAGRAPHS = [
    (
        "Journal of Psychotherapy Integration",
        "The journal is published by the American Psychological Association.",
    ),
    ("G. Stanley Hall", "G. Stanley Hall was the first president of the American Psychological Association."),
    ("Rivers", "Rivers run to the sea."),
]


def tiny_musique(tmp_path: Path) -> Path:
    row = {
        "id": "x1",
        "question": "Who was the first president of the association which published the Journal of "
        "Psychotherapy Integration?",
        "answer": "G. Stanley Hall",
        "answer_aliases": [],
        "question_decomposition": [
            {
                "question": "Which association published the Journal of Psychotherapy Integration?",
                "answer": "American Psychological Association",
            },
            {"question": "Who was the first president of #1?", "answer": "G. Stanley Hall"},
        ],
        "paragraphs": [
            {"idx": i, "title": t, "paragraph_text": p, "is_supporting": i < 2}
            for i, (t, p) in enumerate(PARAGRAPHS)
        ],
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps([row]))
    return path


async def test_retrieval_ablation_smoke(tmp_path: Path) -> None:
    dataset = load_dataset(tiny_musique(tmp_path))
    configs = [("off", {"follow_up_rounds": 0, "hybrid_ranking": "off"}), ("on", {"hybrid_ranking": "off"})]
    answers = {"x1": ["American Psychological Association", "G. Stanley Hall"]}
    rows = await retrieval.retrieval_table("musique", dataset, 1, configs, tmp_path, answers)
    assert {r["plan"] for r in rows} == {p.label for p in retrieval.plans("musique", answers)}
    assert all(0.0 <= r["recall"] <= 1.0 and r["questions"] == 1 for r in rows)
    perfect = [r for r in rows if "gold answer" in r["plan"]]
    assert all(r["recall"] == 1.0 for r in perfect), "with the right hop queries both paragraphs are shown"
    table = retrieval.render_retrieval(rows)
    assert table.count("\n") == len(rows) + 1 and "| MuSiQue |" in table


def test_quality_and_model_tables_render_from_results(tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    row = {
        "id": "1",
        "em": 1.0,
        "f1": 1.0,
        "contains": 1.0,
        "withheld": False,
        "gold_recall": 0.5,
        "citation_precision": 0.0,
        "citation_precision_cited": None,
        "nodes": 2,
        "seconds": 3.0,
        "ok": True,
    }
    results.write_text(json.dumps(row) + "\n")
    summary = summarize(results)
    cells = summary_cells(summary)
    assert cells.count("|") == 10 and "0.000 (n/a, 0)" in cells
    model_table = retrieval.render_model([{"label": "defaults", **summary}])
    header, rule, line = model_table.splitlines()
    assert header.count("|") == rule.count("|") == line.count("|")
    assert "every setting at its default" in quality.describe_runs()

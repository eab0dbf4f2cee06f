"""Quality floor: `mindsearch eval` on both shared sets with the embedded model, and MuSiQue with the gold plan.

    python -m benchmarks.quality --limit 100      # runs (or resumes) the three evaluations, then writes
                                                  # its section of docs/benchmarks.md

Results go to ``--work`` (default ./eval-quality): one JSON line per question, so a stopped run resumes.
These figures are a floor to watch, not numbers to tune prompts to.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from benchmarks.report import DOC, ROOT, write_section
from mindsearch.evaluation import load_dataset, summarize

DATA = ROOT.parent / "shared" / "eval" / "hipporag_v1"
RUNS = [
    ("MuSiQue, planner", "musique_train.json", []),
    ("MuSiQue, gold plan (`--oracle-plan`)", "musique_train.json", ["--oracle-plan"]),
    ("HotpotQA, planner", "hotpotqa_train.json", []),
]


def results_file(work: Path, dataset: str, flags: list[str]) -> Path:
    return work / "eval" / f"{Path(dataset).stem}{'-oracle' if flags else ''}.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--work", type=Path, default=Path("eval-quality"))
    parser.add_argument("--no-run", action="store_true", help="only summarise the results already there")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    work = args.work.resolve()
    if not args.no_run:
        for _title, dataset, flags in RUNS:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "mindsearch",
                    "eval",
                    str(DATA / dataset),
                    "--limit",
                    str(args.limit),
                    *flags,
                    "--data-dir",
                    str(work / "data"),
                ],
                cwd=work,
                check=True,
            )
    rows = [
        "| run | questions | answered | EM | F1 | gold recall | citation precision | nodes/question | s/question |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def fmt(value: float | None, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    for title, dataset, flags in RUNS:
        path = results_file(work, dataset, flags)
        if not path.exists():
            continue
        ids = {item.id for item in load_dataset(DATA / dataset).items[: args.limit]}
        s = summarize(path, ids)
        rows.append(
            f"| {title} | {s['questions']} | {s['answered']} | {fmt(s['em'])} | {fmt(s['f1'])} | "
            f"{fmt(s['gold_recall'])} | {fmt(s['citation_precision'])} | {fmt(s['nodes'], 2)} | "
            f"{fmt(s['seconds'], 1)} |"
        )
    body = (
        "\n".join(rows)
        + """

Embedded model (Gemma 3 270M, a base model) with default settings, the dataset's own paragraphs as the
local index, questions in dataset order. EM and F1 use HotpotQA's answer normalisation on the answer
with its citation markers removed; gold recall is the share of gold paragraphs among the sources shown
to the searchers; citation precision the share of the answer's cited sources that are gold. A floor to
watch, not a target to tune prompts to.
"""
    )
    write_section(
        "quality",
        "Quality floor (mindsearch eval)",
        f"python -m benchmarks.quality --limit {args.limit}",
        body,
        args.output,
    )
    print(body)


if __name__ == "__main__":
    main()

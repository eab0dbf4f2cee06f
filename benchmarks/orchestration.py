"""Orchestration overhead: wall time of whole runs against the lower bound the model's latency implies.

    python -m benchmarks.orchestration          # writes its section of docs/benchmarks.md

A simulated OpenAI-compatible model on 127.0.0.1 (``FakeOpenAIServer``) answers every call after a fixed
time to first token, then streams a fixed number of pieces at a fixed rate, so each call's duration is
known. The engine is an in-memory local index (nothing is fetched). Each sub-question costs two calls
(its search queries, then its answer), the run one plan call before them and one final answer after.

Two models:

- **unlimited slots**: every request is generated at once however many arrive (the best case). The
  bound is plan + depth x (queries + answer) + final answer: the critical path.
- **N slots**: at most N requests are generated at once, the others queue (a GPU server's batch size:
  vLLM's ``--max-num-seqs``, LMDeploy's ``--max-batch-size``). The plan and the final answer run alone;
  between them the sub-questions need at least the critical path and at least their total generation
  work / N, so the bound is plan + max(depth x node, nodes x node / N) + final answer. Slot occupancy is
  busy-slot-seconds / (N x time), measured on the model's side from when each request got its slot to
  its last piece, over the whole run and over the sub-question phase alone (from the end of the plan
  call to the start of the final answer), next to the most that phase allows, min(1, nodes / (N x depth)).

wall / bound is the overhead of everything else (HTTP, parsing, scheduling, passage ranking, citation
checks, events) and of any slot the scheduler leaves idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report import DOC, write_section
from mindsearch import MindSearch, Settings
from mindsearch.llm.openai import OpenAIModel
from mindsearch.testing import FakeOpenAIServer, MemoryEngine, RecordedRequest, doc_hit, kind_of_body

PIECES = {"plan": 20, "queries": 5, "answer": 20, "write": 30}
# the final answer: three sentences, since answers stream a checked sentence at a time
WRITE = (
    "The values of the items were measured in 1999 [1]. Each fact gives the value of one item in units "
    "[2]. The facts say so [1]."
)
DAGS = ("chain-4", "fan-out-8", "diamond", "3-levels-x-4")
CONCURRENCY = 8  # max_concurrency of these runs (default 4): a fan-out of 8 can run at once
MAX_NODES = 16  # max_nodes of these runs (default 8): the 3-levels-x-4 DAG has 12
DOCS = [
    doc_hit(f"Fact {i}", f"Fact {i}: the value of item {i} is {i * 7} units, measured in 1999.")
    for i in range(40)
]


def shape(name: str) -> list[tuple[str, list[str]]]:
    if name == "chain-4":
        return [("a", []), ("b", ["a"]), ("c", ["b"]), ("d", ["c"])]
    if name == "fan-out-8":
        return [(f"n{i}", []) for i in range(8)]
    if name == "diamond":
        return [("a", []), ("b", []), ("c", ["a", "b"])]
    if name == "3-levels-x-4":
        first = [f"l1n{i}" for i in range(4)]
        second = [f"l2n{i}" for i in range(4)]
        return (
            [(n, []) for n in first] + [(n, first) for n in second] + [(f"l3n{i}", second) for i in range(4)]
        )
    raise ValueError(name)


def depth(nodes: list[tuple[str, list[str]]]) -> int:
    level: dict[str, int] = {}
    for node, deps in nodes:
        level[node] = 1 + max((level[d] for d in deps), default=0)
    return max(level.values())


def pieces(count: int, text: str) -> list[str]:
    words = text.split(" ")
    per = max(1, len(words) // count)
    chunks = [" ".join(words[i : i + per]) + " " for i in range(0, len(words), per)]
    while len(chunks) < count:
        chunks.append(" ")
    return [*chunks[: count - 1], "".join(chunks[count - 1 :])]


def simulated(nodes: list[tuple[str, list[str]]]) -> Any:
    plan = json.dumps(
        {
            "add": [
                {"id": n, "question": f"What is the value of item {i}?", "depends_on": d}
                for i, (n, d) in enumerate(nodes)
            ],
            "finish": True,
        }
    )

    def reply(body: dict[str, Any]) -> Any:
        kind = kind_of_body(body)
        if kind == "plan":
            return [
                plan[i : i + len(plan) // PIECES["plan"] + 1]
                for i in range(0, len(plan), len(plan) // PIECES["plan"] + 1)
            ]
        if kind == "queries":
            return pieces(PIECES["queries"], '{"queries": ["value of item"]}')
        if kind == "answer":
            return pieces(
                PIECES["answer"], "The value of the item is given in the fact about it, measured in 1999 [1]."
            )
        return pieces(PIECES["write"], WRITE)

    return reply


def first_sentence_pieces() -> int:
    """How many pieces of the final answer hold its whole first sentence."""
    written = pieces(PIECES["write"], WRITE)
    return next(k for k in range(1, len(written) + 1) if "." in "".join(written[:k]))


def busy(requests: list[RecordedRequest], start: float, end: float) -> float:
    """Slot-seconds the requests held between ``start`` and ``end``."""
    return sum(max(0.0, min(r.ended, end) - max(r.admitted, start)) for r in requests if r.admitted)


async def one_run(
    nodes: list[tuple[str, list[str]]],
    ttft: float,
    tps: float,
    concurrency: int,
    slots: int | None = None,
) -> dict[str, float]:
    """One whole run against a fresh simulated model; times in seconds."""
    async with FakeOpenAIServer(simulated(nodes), first_delay=ttft, piece_delay=1 / tps, slots=slots) as llm:
        settings = Settings(
            llm="openai",
            base_url=f"{llm.url}/v1",
            model="sim",
            data_dir=Path(tempfile.mkdtemp()),
            max_concurrency=concurrency,
            max_nodes=MAX_NODES,
        )
        engine = MindSearch(settings, model=OpenAIModel.from_settings(settings), engines=[MemoryEngine(DOCS)])
        await engine.model.ready()
        llm.requests.clear()
        llm.reset_stats()
        began = time.monotonic()
        first_node = last_node = 0.0
        async for event in engine.stream("What are the values of the items?"):
            now = time.monotonic() - began
            if event.type == "node_started" and not first_node:
                first_node = now
            elif event.type == "node_done":
                assert event.ok, event.error
                last_node = now
            elif event.type == "done":
                assert event.ok
        ended = time.monotonic()
        await engine.aclose()
        requests = list(llm.requests)
        slot_seconds, calls = llm.slot_seconds, llm.calls
    kinds = [kind_of_body(r.body) for r in requests]
    plan_end = max(r.ended for r, k in zip(requests, kinds, strict=True) if k == "plan")
    write_start = min(r.admitted for r, k in zip(requests, kinds, strict=True) if k == "write")
    nodes_window = max(write_start - plan_end, 1e-9)
    width = slots or concurrency
    return {
        "wall": ended - began,
        "nodes_phase": last_node - first_node,
        "calls": calls,
        "slot_seconds": slot_seconds,
        "occupancy": busy(requests, began, ended) / (width * (ended - began)),
        "nodes_occupancy": busy(requests, plan_end, write_start) / (width * nodes_window),
    }


def call(kind: str, ttft: float, tps: float) -> float:
    return ttft + PIECES[kind] / tps


def bound(nodes: list[tuple[str, list[str]]], ttft: float, tps: float, slots: int | None) -> float:
    node = call("queries", ttft, tps) + call("answer", ttft, tps)
    phase = depth(nodes) * node
    if slots is not None:
        phase = max(phase, len(nodes) * node / slots)
    return call("plan", ttft, tps) + phase + call("write", ttft, tps)


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


async def measure(
    ttft: float, tps: float, repeats: int, slot_counts: tuple[int, ...] = (2, 4)
) -> dict[str, Any]:
    results: dict[str, Any] = {"unlimited": {}, "slots": {}}
    # warm-up, not measured: imports, the first connections, any model the ranking loads once per process
    await one_run(shape("diamond"), ttft, tps, CONCURRENCY)
    for name in DAGS:
        nodes = shape(name)
        runs = [await one_run(nodes, ttft, tps, CONCURRENCY) for _ in range(repeats)]
        run = median_run(runs)
        limit = bound(nodes, ttft, tps, None)
        results["unlimited"][name] = {
            "nodes": len(nodes),
            "depth": depth(nodes),
            "bound": limit,
            "wall": run["wall"],
            "ratio": run["wall"] / limit,
            "calls": run["calls"],
        }
    for slots in slot_counts:
        for name in DAGS:
            nodes = shape(name)
            runs = [await one_run(nodes, ttft, tps, CONCURRENCY, slots) for _ in range(repeats)]
            run = median_run(runs)
            limit = bound(nodes, ttft, tps, slots)
            results["slots"][(slots, name)] = {
                **run,
                "nodes": len(nodes),
                "depth": depth(nodes),
                "bound": limit,
                "ratio": run["wall"] / limit,
                "best_nodes_occupancy": min(1.0, len(nodes) / (slots * depth(nodes))),
            }
    fan = shape("fan-out-8")
    together = statistics.median(
        [(await one_run(fan, ttft, tps, CONCURRENCY))["nodes_phase"] for _ in range(repeats)]
    )
    one_by_one = statistics.median(
        [(await one_run(fan, ttft, tps, 1))["nodes_phase"] for _ in range(repeats)]
    )
    results["fan-out speed-up"] = {
        "together": together,
        "one_by_one": one_by_one,
        "speedup": one_by_one / together,
    }
    return results


def render(results: dict[str, Any], ttft: float, tps: float, repeats: int) -> str:
    node = call("queries", ttft, tps) + call("answer", ttft, tps)
    rows = [
        "| DAG | nodes | depth | model calls | lower bound (s) | wall (s) | wall / bound |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    worst = 0.0
    for name in DAGS:
        r = results["unlimited"][name]
        worst = max(worst, r["ratio"])
        rows.append(
            f"| {name} | {r['nodes']} | {r['depth']} | {r['calls']} | {r['bound']:.2f} | {r['wall']:.2f} "
            f"| {r['ratio']:.3f} |"
        )
    slot_rows = [
        "| slots | DAG | lower bound (s) | wall (s) | wall / bound | occupancy, whole run "
        "| occupancy, sub-question phase | most that phase allows |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    worst_slots = 0.0
    worst_gap = 0.0
    for (slots, name), r in results["slots"].items():
        worst_slots = max(worst_slots, r["ratio"])
        worst_gap = max(worst_gap, r["best_nodes_occupancy"] - r["nodes_occupancy"])
        slot_rows.append(
            f"| {slots} | {name} | {r['bound']:.2f} | {r['wall']:.2f} | {r['ratio']:.3f} "
            f"| {r['occupancy']:.0%} | {r['nodes_occupancy']:.0%} | {r['best_nodes_occupancy']:.0%} |"
        )
    fan = results["fan-out speed-up"]
    return f"""Simulated model (`FakeOpenAIServer` on 127.0.0.1): {ttft * 1000:.0f} ms to first token, then
{tps:.0f} pieces/s; calls stream {PIECES["plan"]} (plan), {PIECES["queries"]} (search queries),
{PIECES["answer"]} (sub-question answer) and {PIECES["write"]} (final answer) pieces, so a sub-question
costs {node:.2f} s of generation, the plan {call("plan", ttft, tps):.2f} s and the final answer
{call("write", ttft, tps):.2f} s. In-memory local index (nothing fetched). Settings that differ from the
defaults: `max_concurrency` {CONCURRENCY} (default 4) and `max_nodes` {MAX_NODES} (default 8), so every DAG
below fits in one plan and a fan-out of 8 can run at once; the model settings point at the simulated
model. Each figure is the run with the median wall time of {repeats}, after one warm-up run.

**A model with unlimited parallel slots** (every request generates at once; the best case, no GPU
server is like this). Bound: plan + depth x (queries + answer) + final answer.

{chr(10).join(rows)}

Goal wall / bound <= 1.03: **{"met" if worst <= 1.03 else "MISSED"}** (worst {worst:.3f}).

**A model with a fixed number of slots** (at most that many requests generate at once, the rest queue
in arrival order, as a GPU server's batch size). Bound: plan + max(critical path, total sub-question
generation work / slots) + final answer. Occupancy is busy-slot-seconds / (slots x time), measured on the
model's side; the plan and final-answer calls run alone, so a whole run can never keep every slot busy.
The sub-question phase runs from the end of the plan call to the start of the final answer; the most it
allows is min(1, nodes / (slots x depth)).

{chr(10).join(slot_rows)}

Goal wall / bound <= 1.03 with slots: **{"met" if worst_slots <= 1.03 else "MISSED"}** (worst
{worst_slots:.3f}); sub-question phase occupancy within 5 points of the most it allows:
**{"met" if worst_gap <= 0.05 else "MISSED"}** (largest gap {worst_gap * 100:.1f} points).

Fan-out of 8 with unlimited slots, time from the first sub-question's start to the last one's end:
{fan["together"]:.2f} s with `max_concurrency` {CONCURRENCY}, {fan["one_by_one"]:.2f} s one after another
(`max_concurrency` 1): **{fan["speedup"]:.1f}x** (goal >= 7x: **{"met" if fan["speedup"] >= 7 else "MISSED"}**).
With N slots the same fan-out can gain at most N x; with the default `max_concurrency` 4, at most 4x.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ttft", type=float, default=0.25, help="seconds to first token")
    parser.add_argument("--tps", type=float, default=50.0, help="pieces per second")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slots", type=int, nargs="+", default=[2, 4], help="slot counts to measure")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    results = asyncio.run(measure(args.ttft, args.tps, args.repeats, tuple(args.slots)))
    text = render(results, args.ttft, args.tps, args.repeats)
    command = (
        f"python -m benchmarks.orchestration --ttft {args.ttft:g} --tps {args.tps:g} "
        f"--repeats {args.repeats} --slots {' '.join(str(s) for s in args.slots)}"
    )
    write_section("orchestration", "Orchestration overhead", command, text, args.output)
    print(text)


if __name__ == "__main__":
    main()

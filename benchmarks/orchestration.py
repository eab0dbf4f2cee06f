"""Orchestration overhead: wall time of whole runs against the lower bound the model's latency implies.

    python -m benchmarks.orchestration          # writes its section of docs/benchmarks.md

A simulated OpenAI-compatible model on 127.0.0.1 answers every call after a fixed time to first token,
then streams a fixed number of pieces at a fixed rate, so each call's duration is known. The engine is
an in-memory local index (nothing is fetched). For a DAG the lower bound is
plan + depth x (queries + answer) + writer; wall time / bound is the overhead of everything else
(HTTP, parsing, scheduling, passage ranking, citation checks, events).
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
from mindsearch.testing import FakeOpenAIServer, MemoryEngine, doc_hit, kind_of_body

PIECES = {"plan": 20, "queries": 5, "answer": 20, "write": 30}
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
        return pieces(
            PIECES["write"], "The values of the items were measured in 1999 [1], as the facts say [2]."
        )

    return reply


async def one_run(
    nodes: list[tuple[str, list[str]]], ttft: float, tps: float, concurrency: int
) -> dict[str, float]:
    async with FakeOpenAIServer(simulated(nodes), first_delay=ttft, piece_delay=1 / tps, record=False) as llm:
        settings = Settings(
            llm="openai",
            base_url=f"{llm.url}/v1",
            model="sim",
            data_dir=Path(tempfile.mkdtemp()),
            max_concurrency=concurrency,
            max_nodes=16,
            max_rounds=1,
            cache_ttl=0,
        )
        engine = MindSearch(settings, model=OpenAIModel.from_settings(settings), engines=[MemoryEngine(DOCS)])
        await engine.model.ready()
        started = time.monotonic()
        first_node = last_node = 0.0
        async for event in engine.stream("What are the values of the items?"):
            now = time.monotonic() - started
            if event.type == "node_started" and not first_node:
                first_node = now
            elif event.type == "node_done":
                assert event.ok, event.error
                last_node = now
            elif event.type == "done":
                assert event.ok
        wall = time.monotonic() - started
        await engine.aclose()
    return {"wall": wall, "nodes_phase": last_node - first_node}


def call(kind: str, ttft: float, tps: float) -> float:
    return ttft + PIECES[kind] / tps


async def measure(ttft: float, tps: float, repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in ("chain-4", "fan-out-8", "diamond", "3-levels-x-4"):
        nodes = shape(name)
        bound = call("plan", ttft, tps) + depth(nodes) * (
            call("queries", ttft, tps) + call("answer", ttft, tps)
        )
        bound += call("write", ttft, tps)
        runs = [await one_run(nodes, ttft, tps, concurrency=8) for _ in range(repeats)]
        wall = statistics.median(r["wall"] for r in runs)
        results[name] = {
            "nodes": len(nodes),
            "depth": depth(nodes),
            "bound": bound,
            "wall": wall,
            "ratio": wall / bound,
        }
    fan = shape("fan-out-8")
    together = statistics.median([(await one_run(fan, ttft, tps, 8))["nodes_phase"] for _ in range(repeats)])
    one_by_one = statistics.median(
        [(await one_run(fan, ttft, tps, 1))["nodes_phase"] for _ in range(repeats)]
    )
    results["fan-out speed-up"] = {
        "together": together,
        "one_by_one": one_by_one,
        "speedup": one_by_one / together,
    }
    return results


def render(results: dict[str, Any], ttft: float, tps: float) -> str:
    rows = [
        "| DAG | nodes | depth | lower bound (s) | wall (s) | wall / bound |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    worst = 0.0
    for name in ("chain-4", "fan-out-8", "diamond", "3-levels-x-4"):
        r = results[name]
        worst = max(worst, r["ratio"])
        rows.append(
            f"| {name} | {r['nodes']} | {r['depth']} | {r['bound']:.2f} | {r['wall']:.2f} | {r['ratio']:.3f} |"
        )
    fan = results["fan-out speed-up"]
    return f"""Simulated model: {ttft * 1000:.0f} ms to first token, {tps:.0f} pieces/s; calls stream
{PIECES["plan"]} (plan), {PIECES["queries"]} (queries), {PIECES["answer"]} (node answer) and {PIECES["write"]}
(final answer) pieces. `max_concurrency` 8; medians of the repeats.

{chr(10).join(rows)}

Goal wall / bound <= 1.03: **{"met" if worst <= 1.03 else "MISSED"}** (worst {worst:.3f}).

Fan-out of 8, time from the first node start to the last node end: {fan["together"]:.2f} s at once,
{fan["one_by_one"]:.2f} s one after another (`max_concurrency` 1): **{fan["speedup"]:.1f}x** faster
(goal >= 7x: **{"met" if fan["speedup"] >= 7 else "MISSED"}**).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ttft", type=float, default=0.25, help="seconds to first token")
    parser.add_argument("--tps", type=float, default=50.0, help="pieces per second")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    results = asyncio.run(measure(args.ttft, args.tps, args.repeats))
    text = render(results, args.ttft, args.tps)
    command = (
        f"python -m benchmarks.orchestration --ttft {args.ttft:g} --tps {args.tps:g} --repeats {args.repeats}"
    )
    write_section("orchestration", "Orchestration overhead", command, text, args.output)
    print(text)


if __name__ == "__main__":
    main()

"""The embedded model end to end: seconds per question, prompt and generation tokens per second.

    python -m benchmarks.embedded_model        # writes its section of docs/benchmarks.md

Five shared HotpotQA questions, asked one after another with every setting at its default (Gemma 3 270M
on llama.cpp, the bundled demo index, which holds the HotpotQA paragraphs) and a fresh data folder. Token
rates come from the backend's own counters (prompt tokens / time to the first token; generated tokens /
the rest). Wall seconds grow with whatever else the machine runs; CPU seconds (this process, all its
threads) much less, so both are given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report import DOC, ROOT, write_section
from mindsearch import MindSearch, Settings
from mindsearch._evaluation import exact_match, f1_score, short_answer

DATA = ROOT.parent / "shared" / "eval" / "hipporag_v1" / "hotpotqa_train.json"


async def measure(count: int, data_dir: Path) -> dict[str, Any]:
    questions = json.loads(DATA.read_text())[:count]
    engine = MindSearch(Settings(data_dir=data_dir))
    started = time.perf_counter()
    model: Any = engine.model
    load = time.perf_counter() - started
    rows = []
    for row in questions:
        started, cpu = time.perf_counter(), time.process_time()
        answer = await engine.ask(row["question"])
        rows.append(
            {
                "question": row["question"],
                "gold": row["answer"],
                "answer": answer.text,
                "seconds": time.perf_counter() - started,
                "cpu": time.process_time() - cpu,
                "cited": len(answer.references),
                "f1": f1_score(short_answer(answer.text), row["answer"]),
                "em": exact_match(short_answer(answer.text), row["answer"]),
            }
        )
    await engine.aclose()
    overrides = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("MINDSEARCH_"))
    return {"rows": rows, "stats": dict(model.stats), "load": load, "env": overrides}


def render(result: dict[str, Any]) -> str:
    stats = result["stats"]
    lines = [
        "| question | gold | answer | s | CPU s | sources cited | F1 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        answer = r["answer"].replace("|", "/").replace("\n", " ")[:80]
        lines.append(
            f"| {r['question'][:70]} | {r['gold']} | {answer} | {r['seconds']:.1f} | {r['cpu']:.1f} | {r['cited']} | "
            f"{r['f1']:.2f} |"
        )
    seconds = [r["seconds"] for r in result["rows"]]
    cpu = [r["cpu"] for r in result["rows"]]
    prompt_rate = stats["prompt_tokens"] / stats["prompt_seconds"] if stats["prompt_seconds"] else 0
    gen_rate = stats["tokens"] / stats["seconds"] if stats["seconds"] else 0
    return f"""{chr(10).join(lines)}

{"Every setting at its default" if not result.get("env") else "Settings from the environment: " + ", ".join(result["env"]) + "; every other at its default"}, a fresh data folder. Mean {sum(seconds) / len(seconds):.1f} s per question
({sum(cpu) / len(cpu):.1f} CPU s; model load {result["load"]:.1f} s, once);
{stats["calls"]} model calls: {stats["prompt_tokens"]:,} prompt tokens at **{prompt_rate:.0f} tokens/s**,
{stats["tokens"]:,} generated tokens at **{gen_rate:.0f} tokens/s** (JSON-grammar calls included).
The 270M base model proves the pipeline runs offline; its answers are not the point.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.mkdtemp()))
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    result = asyncio.run(measure(args.questions, args.data_dir))
    text = render(result)
    write_section(
        "embedded",
        "Embedded model (Gemma 3 270M on llama.cpp)",
        "python -m benchmarks.embedded_model",
        text,
        args.output,
    )
    print(text)


if __name__ == "__main__":
    main()

"""Soak: mixed sessions against `serve`'s app for a long time, watching memory, descriptors and tasks.

    python -m benchmarks.soak --seconds 600          # writes its section of docs/benchmarks.md

The server (the app on uvicorn as ``mindsearch serve`` runs it: ``server_config``, with every connection
limit), a simulated OpenAI-compatible model (``FakeOpenAIServer``: 10 ms a piece) and the clients all run
on 127.0.0.1 in this one process, so RSS, open descriptors and asyncio tasks are those of the whole
process. Clients loop over five kinds of session: streamed search, JSON search, a follow-up in a session
the server issued (its X-Session-Id), OpenAI chat completions, and a client that hangs up mid-stream.
The load stops by itself; figures are sampled every few seconds. Settings that differ from the defaults:
MINDSEARCH_MAX_CONCURRENT_RUNS = 2 x clients (a hung-up run can outlive its client for a moment), the
model settings, and an in-memory search engine instead of the default local index.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn

from benchmarks.report import DOC, write_section
from mindsearch import MindSearch, Settings
from mindsearch.api import create_app, server_config
from mindsearch.llm.openai import OpenAIModel
from mindsearch.testing import FakeOpenAIServer, MemoryEngine, doc_hit, kind_of_body, plan_json

DOCS = [
    doc_hit(f"Topic {i}", f"Fact number {i}: the river Danube flows through {i % 10} capitals.")
    for i in range(50)
]


SETTLE = 15.0  # seconds the end waits for descriptors, tasks and runs to return to the baseline


def settled(baseline: dict[str, int], end: dict[str, Any]) -> bool:
    return bool(end["fds"] <= baseline["fds"] and end["tasks"] <= baseline["tasks"] and end["runs"] == 0)


def rss_kib() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def simulated_reply(body: dict[str, Any]) -> Any:
    kind = kind_of_body(body)
    if kind == "plan":
        return plan_json(
            ("a", "Which capitals does the Danube flow through?", []),
            ("b", "How long is the Danube?", []),
            ("c", "Which capital on the Danube is largest?", ["a", "b"]),
        )
    if kind == "queries":
        return '{"queries": ["danube capitals"]}'
    if "Standalone question" in json.dumps(body):
        return "How long is the river Danube?"
    return [
        f"{word} " for word in "The Danube flows through several capitals, as fact number 3 says [1].".split()
    ]


async def client(base: str, stop: float, counts: dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    sessions: list[str] = []  # ids the server issued (X-Session-Id), reused by follow-ups
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < stop:
            kind = rng.choice(["stream", "json", "follow-up", "openai", "hang-up"])
            status = 0
            try:
                if kind == "stream":
                    async with http.post(f"{base}/v1/search", json={"question": "Danube capitals?"}) as r:
                        await r.read()
                        status = r.status
                elif kind == "json":
                    body = {"question": "Danube capitals?", "stream": False}
                    async with http.post(f"{base}/v1/search", json=body) as r:
                        await r.read()
                        status = r.status
                        issued = r.headers.get("X-Session-Id")
                        if issued:
                            sessions[:] = [*sessions[-4:], issued]
                elif kind == "follow-up":
                    body = {"question": "And how long is it?", "stream": False}
                    if sessions:
                        body["session_id"] = rng.choice(sessions)
                    async with http.post(f"{base}/v1/search", json=body) as r:
                        await r.read()
                        status = r.status
                elif kind == "openai":
                    body = {
                        "model": "mindsearch",
                        "stream": True,
                        "messages": [{"role": "user", "content": "Danube capitals?"}],
                    }
                    async with http.post(f"{base}/v1/chat/completions", json=body) as r:
                        await r.read()
                        status = r.status
                else:
                    r = await http.post(f"{base}/v1/search", json={"question": "Danube capitals?"})
                    status = r.status
                    await r.content.readline()
                    r.close()  # hang up mid-stream
                key = kind if status == 200 else f"HTTP {status}"
                counts[key] = counts.get(key, 0) + 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                counts["client errors"] = counts.get("client errors", 0) + 1


async def soak(seconds: float, clients: int, sample_every: float) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="mindsearch-soak-"))
    async with FakeOpenAIServer(simulated_reply, piece_delay=0.01, record=False) as llm:
        settings = Settings(
            llm="openai",
            base_url=f"{llm.url}/v1",
            model="sim",
            data_dir=data,
            max_concurrent_runs=clients * 2,
        )
        engine = MindSearch(settings, model=OpenAIModel.from_settings(settings), engines=[MemoryEngine(DOCS)])
        api = uvicorn.Server(server_config(settings, create_app(settings, engine=engine), port=0))
        serving = asyncio.create_task(api.serve())
        while not api.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{api.servers[0].sockets[0].getsockname()[1]}"
        try:
            # warm up at full load, then let it settle: pools and caches are filled in the baseline
            warm: dict[str, int] = {}
            warm_stop = time.monotonic() + min(10.0, seconds / 10)
            await asyncio.gather(*(client(url, warm_stop, warm, seed) for seed in range(clients)))
            await asyncio.sleep(1.0)
            baseline = {"rss": rss_kib(), "fds": open_fds(), "tasks": len(asyncio.all_tasks())}
            samples: list[dict[str, float]] = []
            counts: dict[str, int] = {}
            start = time.monotonic()
            stop = start + seconds
            workers = [asyncio.create_task(client(url, stop, counts, seed)) for seed in range(clients)]
            while time.monotonic() < stop:
                await asyncio.sleep(min(sample_every, max(stop - time.monotonic(), 0)))
                samples.append(
                    {
                        "t": round(time.monotonic() - start),
                        "rss": rss_kib(),
                        "fds": open_fds(),
                        "tasks": len(asyncio.all_tasks()),
                        "runs": len(engine.active_runs),
                    }
                )
            await asyncio.gather(*workers)
            # hung-up runs and closing connections wind down: wait until descriptors, tasks and runs
            # are back to the baseline, SETTLE seconds at most (what is left then is a leak)
            stopped = time.monotonic()
            while True:
                await asyncio.sleep(0.5)
                end: dict[str, float] = {
                    "rss": rss_kib(),
                    "fds": open_fds(),
                    "tasks": len(asyncio.all_tasks()),
                    "runs": len(engine.active_runs),
                }
                if settled(baseline, end) or time.monotonic() - stopped > SETTLE:
                    break
            end["settled_after"] = time.monotonic() - stopped
        finally:
            api.should_exit = True
            await serving
    return {
        "baseline": baseline,
        "samples": samples,
        "end": end,
        "counts": counts,
        "seconds": seconds,
        "clients": clients,
    }


def render(result: dict[str, Any]) -> str:
    base, end, samples = result["baseline"], result["end"], result["samples"]
    growth = 100 * (end["rss"] - base["rss"]) / base["rss"]
    total = sum(result["counts"].values())
    failed = sum(v for k, v in result["counts"].items() if k == "client errors" or k.startswith("HTTP"))
    rows = [
        "| seconds | RSS (MiB) | open descriptors | asyncio tasks | runs in flight |",
        "| --- | --- | --- | --- | --- |",
    ]
    step = max(1, len(samples) // 12)
    for sample in samples[::step]:
        rows.append(
            f"| {sample['t']} | {sample['rss'] / 1024:.1f} | {sample['fds']} | {sample['tasks']} "
            f"| {sample['runs']} |"
        )
    verdict_rss = "met" if growth < 10 else "MISSED"
    back = settled(base, end)
    return f"""{result["clients"]} clients for {result["seconds"]:.0f} s; {total} sessions
({", ".join(f"{k}: {v}" for k, v in sorted(result["counts"].items()))}).

{chr(10).join(rows)}

| | baseline (before load) | end ({end["settled_after"]:.1f} s after the load stopped) |
| --- | --- | --- |
| RSS (MiB) | {base["rss"] / 1024:.1f} | {end["rss"] / 1024:.1f} |
| open descriptors | {base["fds"]} | {end["fds"]} |
| asyncio tasks | {base["tasks"]} | {end["tasks"]} |
| runs in flight | - | {end["runs"]} |

The baseline is taken after a warm-up at the same load (a tenth of the run, at most 10 s) and a
second of quiet, so connection pools and caches are in it. RSS growth over the run: {growth:+.1f}%.
Goal < 10%: **{verdict_rss}**.
Descriptors, tasks and runs back to their baseline within {SETTLE:.0f} s of the load stopping (hung-up runs
and closing connections wind down): **{"met" if back else "MISSED"}**.
Sessions refused or failed (any status but 200, or a client error): {failed}
(goal 0: **{"met" if not failed else "MISSED"}**).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--sample-every", type=float, default=5)
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    result = asyncio.run(soak(args.seconds, args.clients, args.sample_every))
    command = f"python -m benchmarks.soak --seconds {args.seconds:g} --clients {args.clients}"
    write_section(
        "soak",
        "Soak: memory, descriptors and tasks under mixed sessions",
        command,
        render(result),
        args.output,
    )
    print(render(result))


if __name__ == "__main__":
    main()

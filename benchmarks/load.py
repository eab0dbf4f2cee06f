"""Server load: many concurrent SSE sessions against the REST server with a simulated model.

    python -m benchmarks.load --sessions 100     # writes its section of docs/benchmarks.md

The server runs in a child process exactly as ``mindsearch serve`` runs it (``mindsearch.api.server_config``:
uvicorn with every connection limit, the header and body deadlines, the host allow-list), its settings
read from MINDSEARCH_* variables; the only ones set are those that point it at the simulated model and
at a fresh data folder, plus MINDSEARCH_MAX_CONCURRENT_RUNS in the second scenario. The simulated
OpenAI-compatible model (``FakeOpenAIServer``, 250 ms to first token, 50 pieces/s, no slot limit) runs
in the same child; the search engine is an in-memory index instead of the default local one. The clients
run here, one Python process, each session a new conversation (the server issues its X-Session-Id).

Two scenarios, each with a fresh server:

- **defaults**: MINDSEARCH_MAX_CONCURRENT_RUNS is 4, so of ``--sessions`` requests sent at once, 4 run
  and the rest are refused at once with 503 and Retry-After (the designed behaviour: the server sheds
  load rather than queueing it). Measured: how many ran, how fast the refusals came, and the runs.
- **cap raised**: MINDSEARCH_MAX_CONCURRENT_RUNS = ``--sessions``, so every session runs at once.

Per run: the time to the first server-sent event (``run_started``, sent before any model token), the time
to the first token of the answer (the first ``answer_delta``) and the whole run, on the client's clock
(also the client's own work) and the first two on the server's clock (from a request's arrival to the
first byte of its stream, and to the first ``answer_delta`` it sends). A few sessions alone before the
load give the same times unloaded, and the simulated model's latencies give their lower bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.report import DOC, ROOT, write_section
from mindsearch.testing import clean_env

ALONE = 3  # sessions run one at a time before the load: the unloaded times
QUESTION = "What are the values of the items? (session {n})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve(port: int, ttft: float, tps: float) -> None:
    """The child: the simulated model, then the server on ``port`` as ``mindsearch serve`` runs it."""
    import uvicorn

    from benchmarks.orchestration import DOCS, shape, simulated
    from mindsearch import MindSearch, Settings
    from mindsearch.api import create_app, server_config
    from mindsearch.llm.openai import OpenAIModel
    from mindsearch.testing import FakeOpenAIServer, MemoryEngine

    async with FakeOpenAIServer(
        simulated(shape("diamond")), first_delay=ttft, piece_delay=1 / tps, record=False
    ) as llm:
        # the model settings are given here (the model's port is only known now); the rest come from
        # the MINDSEARCH_* variables the parent set, as for `mindsearch serve`
        settings = Settings(llm="openai", base_url=f"{llm.url}/v1", model="sim")
        engine = MindSearch(settings, model=OpenAIModel.from_settings(settings), engines=[MemoryEngine(DOCS)])
        app = FirstByteTimer(create_app(settings, engine=engine))
        server = uvicorn.Server(server_config(settings, app, port=port))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        await task


class FirstByteTimer:
    """Server-side clock: from a search request's arrival to the first byte of its response body, and to
    the first ``answer_delta`` event in it.

    ``GET /_first_bytes`` (served here, outside the app) returns and clears both lists of seconds.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.first: list[float] = []
        self.answer: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_first_bytes":
            body = json.dumps({"first": self.first, "answer": self.answer}).encode()
            self.first, self.answer = [], []
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "http" or scope["path"] != "/v1/search":
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        status = 0
        first = answer = False

        async def timed_send(message: Any) -> None:
            nonlocal status, first, answer
            if message["type"] == "http.response.start":
                status = message["status"]
            elif status == 200 and message["type"] == "http.response.body" and message.get("body"):
                if not first:
                    first = True
                    self.first.append(time.perf_counter() - arrived)
                if not answer and b"event: answer_delta" in message["body"]:
                    answer = True
                    self.answer.append(time.perf_counter() - arrived)
            await send(message)

        await self.app(scope, receive, timed_send)


async def session(base: str, http: aiohttp.ClientSession, n: int) -> dict[str, Any]:
    """One streamed search; times in seconds from sending the request."""
    started = time.perf_counter()
    first = answer = None
    done = False
    try:
        async with http.post(f"{base}/v1/search", json={"question": QUESTION.format(n=n)}) as r:
            if r.status != 200:
                await r.read()
                return {
                    "status": r.status,
                    "refused_after": time.perf_counter() - started,
                    "retry_after": r.headers.get("Retry-After"),
                }
            issued = bool(r.headers.get("X-Session-Id"))
            async for line in r.content:
                if line.startswith(b"data:"):
                    first = first or time.perf_counter() - started
                    if answer is None and b'"type":"answer_delta"' in line:
                        answer = time.perf_counter() - started
                    if b'"type":"done"' in line:
                        done = json.loads(line[5:])["ok"]
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return {"status": 0, "error": type(exc).__name__}
    error = None if done and answer is not None else "no answer" if done else "no done event"
    if not issued:
        error = "no X-Session-Id"
    return {
        "status": 200,
        "first": first,
        "answer": answer,
        "total": time.perf_counter() - started,
        "error": error,
    }


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def scenario(sessions: int, ttft: float, tps: float, env: dict[str, str]) -> dict[str, Any]:
    """A fresh server with ``env`` (MINDSEARCH_* variables), a few sessions alone, then the load."""
    port = free_port()
    data = tempfile.mkdtemp(prefix="mindsearch-load-")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.load",
        "--serve",
        str(port),
        "--ttft",
        str(ttft),
        "--tps",
        str(tps),
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
        env={**clean_env(), "MINDSEARCH_DATA_DIR": data, **env},
    )
    assert child.stdout is not None
    await asyncio.wait_for(child.stdout.readline(), 60)
    base = f"http://127.0.0.1:{port}"
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as http:
            await session(base, http, 0)  # warm-up: first connections, lazy imports
            async with http.get(f"{base}/_first_bytes") as r:
                await r.read()
            alone = [await session(base, http, -1 - i) for i in range(ALONE)]
            async with http.get(f"{base}/_first_bytes") as r:
                server_alone = await r.json()
            results = await asyncio.gather(*(session(base, http, n) for n in range(sessions)))
            async with http.get(f"{base}/_first_bytes") as r:
                server = await r.json()
        peak = peak_rss_mib(child.pid)
    finally:
        child.terminate()
        await child.wait()
    return {
        "results": results,
        "alone": alone,
        "server": server,
        "server_alone": server_alone,
        "peak": peak,
        "sessions": sessions,
        "env": env,
    }


async def measure(
    sessions: int, ttft: float, tps: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Both scenarios; ``env`` adds MINDSEARCH_* variables to both (and is named in the report)."""
    extra = env or {}
    return {
        "defaults": await scenario(sessions, ttft, tps, extra),
        "raised": await scenario(
            sessions, ttft, tps, {**extra, "MINDSEARCH_MAX_CONCURRENT_RUNS": str(max(sessions, 4))}
        ),
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bounds(ttft: float, tps: float) -> dict[str, float]:
    """Unloaded lower bounds of the diamond run: plan, two levels of (queries, answer), then the final
    answer's first sentence (``answer_delta`` carries checked sentences) or all of it."""
    from benchmarks.orchestration import call, depth, first_sentence_pieces, shape

    nodes = depth(shape("diamond")) * (call("queries", ttft, tps) + call("answer", ttft, tps))
    before = call("plan", ttft, tps) + nodes
    return {
        "answer": before + ttft + first_sentence_pieces() / tps,
        "total": before + call("write", ttft, tps),
    }


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} / {percentile(values, 0.99) * 1000:.0f}"


def s(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {percentile(values, 0.99):.2f}"


def run_rows(label: str, runs: list[dict[str, Any]], server: dict[str, list[float]]) -> str:
    ok = [r for r in runs if r.get("status") == 200 and not r.get("error")]
    if not ok:
        return f"| {label} | 0 | - | - | - | - | - |"
    return (
        f"| {label} | {len(ok)} | {ms(server['first'])} | {ms([r['first'] for r in ok])} "
        f"| {s(server['answer'])} | {s([r['answer'] for r in ok])} | {s([r['total'] for r in ok])} |"
    )


def render(result: dict[str, Any], ttft: float, tps: float) -> str:
    limits = bounds(ttft, tps)
    header = (
        "| sessions | ran | first event, server (ms) | first event, client (ms) "
        "| first answer token, server (s) | first answer token, client (s) | whole run, client (s) |\n"
        "| --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = []
    verdicts = []
    for key, title in (("defaults", "At the defaults"), ("raised", "With the cap raised")):
        r = result[key]
        runs = r["results"]
        refused = [x for x in runs if x.get("status") == 503]
        errors = [
            x.get("error") or f"HTTP {x.get('status')}"
            for x in runs
            if x.get("status") not in (200, 503) or x.get("error")
        ]
        retry = sorted({str(x.get("retry_after")) for x in refused})
        named = ", ".join(f"{k}={v}" for k, v in r["env"].items())
        setting = f"{named}, every other setting at its default" if named else "every setting at its default"
        if "MINDSEARCH_MAX_CONCURRENT_RUNS" not in r["env"]:
            setting += ": MINDSEARCH_MAX_CONCURRENT_RUNS is 4"
        ok = [x for x in runs if x.get("status") == 200 and not x.get("error")]
        lines.append(f"**{title}** ({setting}): {r['sessions']} sessions sent at once.\n")
        lines.append(header)
        lines.append(run_rows(f"1 alone (x{ALONE}, before the load)", r["alone"], r["server_alone"]))
        lines.append(run_rows(f"{r['sessions']} at once", runs, r["server"]))
        refusals = (
            f"{len(refused)} refused with 503 (Retry-After: {', '.join(retry)}) in "
            f"{ms([x['refused_after'] for x in refused])} ms (p50 / p99)"
            if refused
            else "none refused"
        )
        lines.append(
            f"\n{len(ok)} ran to a cited answer, {refusals}, {len(errors)} other errors"
            f"{' (' + ', '.join(sorted(set(errors))) + ')' if errors else ''}; server peak RSS "
            f"{r['peak']:.0f} MiB.\n"
        )
        verdicts.append((key, ok, refused, errors, r))
    raised = verdicts[1]
    answers = [x["answer"] for x in raised[1]]
    alone = statistics.median(x["answer"] for x in raised[4]["alone"] if x.get("answer"))
    first_p99 = percentile(raised[4]["server"]["first"], 0.99) * 1000
    defaults_ok = (
        not verdicts[0][3]
        and len(verdicts[0][1]) == min(4, verdicts[0][4]["sessions"])
        and len(verdicts[0][1]) + len(verdicts[0][2]) == verdicts[0][4]["sessions"]
    )
    raised_ok = not raised[3] and len(raised[1]) == raised[4]["sessions"]
    sessions = result["raised"]["sessions"]
    return f"""{sessions} concurrent `POST /v1/search` SSE sessions, each a new conversation (a diamond plan: 3
sub-questions, 8 model calls). The server runs as `mindsearch serve` runs it (uvicorn with every
connection limit: MINDSEARCH_MAX_CONNECTIONS 256, the header and body deadlines, the host allow-list);
besides the settings named below, only the model settings (pointing at the simulated model) and
MINDSEARCH_DATA_DIR (a fresh folder) are set. The simulated model (`FakeOpenAIServer` in the server's
process) takes {ttft * 1000:.0f} ms to the first token and streams {tps:.0f} pieces/s, with no limit on
requests at once, so the figures show the server, not a model's queue; the search engine is an
in-memory index of 40 short documents instead of the default local index. The clients are one Python
process on the same 2 cores. Figures are p50 / p99.

The first event (`run_started`) waits for no model token. Answers stream a sentence at a time, once
its citations are checked, so the first answer token (the first `answer_delta`) comes when the final
answer's first sentence is complete. Lower bounds from the model's latencies alone: first answer token
{limits["answer"]:.2f} s, whole run {limits["total"]:.2f} s.

{chr(10).join(lines)}
Server clock: from a request's arrival to the first byte of its stream, and to its first `answer_delta`;
client clock: from sending the request, so it also holds the client's own work (one process reading
{sessions} streams). With the cap raised, the first answer token came at p50
{statistics.median(answers):.2f} s and p99 {percentile(answers, 0.99):.2f} s on the client clock:
{statistics.median(answers) / limits["answer"]:.2f}x and {percentile(answers, 0.99) / limits["answer"]:.2f}x
its lower bound, {statistics.median(answers) / alone:.2f}x and {percentile(answers, 0.99) / alone:.2f}x the
same session alone.

Goals: at the defaults, 4 run and every other session is refused with 503 at once, no other error
(**{"met" if defaults_ok else "MISSED"}**); with the cap raised, every session answered, no error
(**{"met" if raised_ok else "MISSED"}**), first event p99 < 100 ms on the server clock
(**{"met" if first_p99 < 100 else "MISSED"}**, {first_p99:.0f} ms).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--ttft", type=float, default=0.25)
    parser.add_argument("--tps", type=float, default=50.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.ttft, args.tps))
        return
    result = asyncio.run(measure(args.sessions, args.ttft, args.tps))
    text = render(result, args.ttft, args.tps)
    write_section(
        "load", "Server load", f"python -m benchmarks.load --sessions {args.sessions}", text, args.output
    )
    print(text)


if __name__ == "__main__":
    main()

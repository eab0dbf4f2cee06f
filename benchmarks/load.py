"""Server load: many concurrent SSE sessions against the REST server with a simulated model.

    python -m benchmarks.load --sessions 100     # writes its section of docs/benchmarks.md

The server (the app `serve.py` starts, on uvicorn) and a simulated OpenAI-compatible model (250 ms to
first token, 50 pieces/s) run in a child process on 127.0.0.1; the clients run here. Measured per
session: errors, and the time from sending the request to the first server-sent event. No event waits
for a model token (the first is `run_started`), so that time is the server's own latency under load.
Peak RSS is the server process's high-water mark.
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve(port: int, ttft: float, tps: float) -> None:
    from benchmarks.orchestration import DOCS, shape, simulated
    from mindsearch import MindSearch, Settings
    from mindsearch.api import create_app
    from mindsearch.llm.openai import OpenAIModel
    from mindsearch.testing import AppServer, FakeOpenAIServer, MemoryEngine

    async with FakeOpenAIServer(
        simulated(shape("diamond")), first_delay=ttft, piece_delay=1 / tps, record=False
    ) as llm:
        settings = Settings(
            llm="openai",
            base_url=f"{llm.url}/v1",
            model="sim",
            data_dir=Path(tempfile.mkdtemp()),
            max_concurrent_runs=1000,
            cache_ttl=0,
            max_rounds=1,
        )
        engine = MindSearch(settings, model=OpenAIModel.from_settings(settings), engines=[MemoryEngine(DOCS)])
        server = AppServer(FirstByteTimer(create_app(settings, engine=engine)))
        server.config.port = port
        server.config.backlog = 4096
        async with server:
            print("ready", flush=True)
            await asyncio.Event().wait()


class FirstByteTimer:
    """Server-side clock: from the request's arrival to the first byte of its response body.

    ``GET /_first_bytes`` returns (and clears) the times, in seconds, of the streamed searches.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_first_bytes":
            body = json.dumps(self.times).encode()
            self.times = []
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
        timed = False

        async def timed_send(message: Any) -> None:
            nonlocal timed
            if not timed and message["type"] == "http.response.body" and message.get("body"):
                timed = True
                self.times.append(time.perf_counter() - arrived)
            await send(message)

        await self.app(scope, receive, timed_send)


async def session(base: str, http: aiohttp.ClientSession) -> dict[str, Any]:
    started = time.perf_counter()
    first = None
    done = False
    try:
        async with http.post(
            f"{base}/v1/search", json={"question": "What are the values of the items?"}
        ) as r:
            if r.status != 200:
                return {"error": f"HTTP {r.status}"}
            async for line in r.content:
                if line.startswith(b"data:"):
                    first = first or time.perf_counter() - started
                    if b'"type":"done"' in line:
                        done = json.loads(line[5:])["ok"]
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return {"error": type(exc).__name__}
    return {
        "first": first,
        "total": time.perf_counter() - started,
        "error": None if done else "no done event",
    }


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def measure(sessions: int, ttft: float, tps: float) -> dict[str, Any]:
    port = free_port()
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
        env=clean_env(),
    )
    assert child.stdout is not None
    await asyncio.wait_for(child.stdout.readline(), 60)
    base = f"http://127.0.0.1:{port}"
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as http:
            await session(base, http)  # warm-up
            async with http.get(f"{base}/_first_bytes") as r:
                await r.read()
            results = await asyncio.gather(*(session(base, http) for _ in range(sessions)))
            async with http.get(f"{base}/_first_bytes") as r:
                server_first = await r.json()
        peak = peak_rss_mib(child.pid)
    finally:
        child.terminate()
        await child.wait()
    return {"results": results, "peak": peak, "sessions": sessions, "server_first": server_first}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def render(result: dict[str, Any], ttft: float, tps: float) -> str:
    firsts = [r["first"] * 1000 for r in result["results"] if r.get("first") is not None]
    server = [t * 1000 for t in result["server_first"]]
    server_p99 = percentile(server, 0.99) if server else float("nan")
    totals = [r["total"] for r in result["results"] if r.get("total") is not None]
    errors = [r["error"] for r in result["results"] if r.get("error")]
    p99 = percentile(firsts, 0.99) if firsts else float("nan")
    verdict_errors = "met" if not errors else "MISSED: " + ", ".join(sorted(set(errors)))
    return f"""{result["sessions"]} concurrent `POST /v1/search` SSE sessions (diamond plan: 3 sub-questions, 9 model
calls each), simulated model {ttft * 1000:.0f} ms to first token, {tps:.0f} pieces/s.

| errors | first event p50 / p99, server clock (ms) | first event p50 / p99, client clock (ms) | whole run p50 / p99 (s) | server peak RSS (MiB) |
| --- | --- | --- | --- | --- |
| {len(errors)} | {statistics.median(server):.1f} / {server_p99:.1f} | {statistics.median(firsts):.1f} / {p99:.1f} | {statistics.median(totals):.2f} / {percentile(totals, 0.99):.2f} | {result["peak"]:.0f} |

No event waits for a model token: the first (`run_started`) is sent once the run has started. The
server clock runs from a request's arrival to the first byte of its event stream; the client clock also
holds the client's own work (one Python process opening and reading 100 streams).
Goals: errors 0 (**{verdict_errors}**); first event p99 < 100 ms on the server clock
(**{"met" if server_p99 < 100 else "MISSED"}**).
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

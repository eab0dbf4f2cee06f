"""Scale out: runs per minute with 1, 2 and 4 workers, stream resume latency, Redis memory per session.

    python -m benchmarks.scale --seconds 40     # writes its section of docs/benchmarks.md

Everything runs as real processes on loopback, as in a deployment: a private ``redis-server``, two
``mindsearch serve`` replicas, N ``mindsearch worker`` processes, and the upstream in its own process:
a simulated OpenAI-compatible model (``FakeOpenAIServer``: ``--ttft`` seconds to the first token, then
``--tps`` pieces a second, no slot limit: an I/O-bound model) and a fake SearXNG whose hits carry their
text (no page is fetched: MINDSEARCH_PAGES_PER_NODE=0, so the workers' CPU goes to the pipeline, not to
parsing pages). Each worker runs MINDSEARCH_WORKER_JOBS=4 runs at once and the fleet's cap is 4 per
worker; 4 clients per worker keep it full, each asking one question after another on one of the replicas.

Resume latency: a run's stream is read for a few events on replica A and dropped; the time from
``GET /v1/runs/{id}/events`` with ``Last-Event-ID`` on replica B to its first event. Redis memory: the
growth of ``used_memory`` for 1,000 sessions of one turn each (a 60-character question, a 600-character
answer), written through the same store the servers use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.report import DOC, ROOT, write_section
from mindsearch.testing import clean_env

WORKERS = (1, 2, 4)
JOBS = 4  # MINDSEARCH_WORKER_JOBS
ANSWER = "The value of the item is given in the fact about it, measured in 1999 [1]."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def upstream(portfile: Path, ttft: float, tps: float) -> None:
    """The child: the simulated model and a fake SearXNG, until killed."""
    from aiohttp import web

    from mindsearch.testing import FakeOpenAIServer, StaticSite, kind_of_body, plan_json

    def reply(body: dict[str, Any]) -> Any:
        kind = kind_of_body(body)
        text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        if kind == "plan":
            return plan_json(("q1", text.split("Question: ", 1)[1].split("\n", 1)[0], []))
        if kind == "queries":
            return '{"queries": ["value of item"]}'
        return [ANSWER[i : i + 8] for i in range(0, len(ANSWER), 8)]

    async def searxng(request: web.Request) -> web.Response:
        hit = {
            "url": "http://example.invalid/item",
            "title": "Item",
            "content": ANSWER.replace(" [1]", ""),
        }
        return web.json_response({"results": [hit]})

    site = StaticSite(routes={"/search": searxng})
    async with FakeOpenAIServer(reply, first_delay=ttft, piece_delay=1 / tps, record=False) as model, site:
        portfile.write_text(json.dumps({"model": model.port, "site": site.port}))  # noqa: ASYNC240
        await asyncio.Event().wait()


class Deployment:
    """redis-server, the upstream, replicas and workers as processes; ``close`` ends every one."""

    def __init__(self, folder: Path, ttft: float, tps: float) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self.redis_port = free_port()
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is missing: apt-get install redis-server")
        self._spawn([binary, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""], "redis")
        portfile = folder / "upstream.json"
        self._spawn(
            [
                sys.executable,
                "-m",
                "benchmarks.scale",
                "--upstream",
                str(portfile),
                "--ttft",
                str(ttft),
                "--tps",
                str(tps),
            ],
            "upstream",
        )
        wait(lambda: portfile.exists() and portfile.read_text().endswith("}"), "the upstream")
        ports = json.loads(portfile.read_text())
        self.env = {
            **clean_env(),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "MINDSEARCH_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "MINDSEARCH_LLM": "openai",
            "MINDSEARCH_BASE_URL": f"http://127.0.0.1:{ports['model']}/v1",
            "MINDSEARCH_MODEL": "fake-model",
            "MINDSEARCH_ENGINES": "searxng",
            "MINDSEARCH_SEARXNG_URL": f"http://127.0.0.1:{ports['site']}",
            "MINDSEARCH_PAGES_PER_NODE": "0",
            "MINDSEARCH_FOLLOW_UP_ROUNDS": "0",
            "MINDSEARCH_HYBRID_RANKING": "off",
            "MINDSEARCH_WORKER_JOBS": str(JOBS),
            "MINDSEARCH_LOG_FORMAT": "text",
            "MINDSEARCH_LOG_LEVEL": "warning",
            "MINDSEARCH_DATA_DIR": str(folder / "data"),
        }
        self.replicas: list[str] = []
        self.workers: list[subprocess.Popen[bytes]] = []

    def _spawn(
        self, command: list[str], name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "ab")  # the child keeps it open
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
        self.procs.append(process)
        return process

    def start_replicas(self, count: int, cap: int) -> None:
        for index in range(count):
            port = free_port()
            env = {**self.env, "MINDSEARCH_MAX_CONCURRENT_RUNS": str(cap)}
            self._spawn(
                [sys.executable, "-m", "mindsearch", "serve", "--port", str(port)], f"api{index}", env
            )
            self.replicas.append(f"http://127.0.0.1:{port}")
        for url in self.replicas:
            wait(lambda url=url: _answers(url + "/v1/models"), url)

    def set_workers(self, count: int, cap: int) -> None:
        for process in self.workers:
            process.send_signal(signal.SIGKILL)
            process.wait()
        env = {**self.env, "MINDSEARCH_MAX_CONCURRENT_RUNS": str(cap)}
        command = [sys.executable, "-m", "mindsearch", "worker"]
        self.workers = [self._spawn(command, f"worker{i}", env) for i in range(count)]
        wait(lambda: live_workers(self.redis_port, {p.pid for p in self.workers}), f"{count} workers")

    def close(self) -> None:
        for process in self.procs:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        for process in self.procs:
            process.wait()


def live_workers(port: int, pids: set[int]) -> bool:
    """Whether every one of ``pids`` has said it is alive (``RunLog.present``) in the last lease."""
    import redis

    client: Any = redis.Redis(port=port, decode_responses=True)
    try:
        now = client.time()[0] * 1000
        alive = client.zrangebyscore("mindsearch:workers", now, "+inf")
    finally:
        client.close()
    return pids <= {int(str(member).rsplit(":", 1)[1]) for member in alive}


def _answers(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)


def wait(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up")


async def throughput(replicas: list[str], clients: int, seconds: float) -> dict[str, float]:
    """Runs finished per minute with ``clients`` asking one question after another."""
    done: list[float] = []
    refused = 0
    deadline = time.monotonic() + seconds

    async def client(index: int, http: aiohttp.ClientSession) -> None:
        nonlocal refused
        count = 0
        while time.monotonic() < deadline:
            body = {"question": f"What is the value of item {index}-{count}?", "stream": False}
            started = time.monotonic()
            async with http.post(f"{replicas[index % len(replicas)]}/v1/search", json=body) as response:
                result = await response.json()
            count += 1
            if response.status == 200 and result.get("ok") and time.monotonic() <= deadline:
                done.append(time.monotonic() - started)
            elif response.status == 503:
                refused += 1
                await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=120)
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    wall = min(time.monotonic() - started, seconds)
    return {
        "runs_per_minute": len(done) / wall * 60,
        "median_run": statistics.median(done) if done else 0.0,
        "refused": refused,
    }


async def resume_latency(replicas: list[str], count: int) -> list[float]:
    """Seconds from a re-attach with Last-Event-ID on replica B to its first event."""
    latencies = []
    async with aiohttp.ClientSession() as http:
        for index in range(count):
            body = {"question": f"What is the value of resumed item {index}?"}
            async with http.post(f"{replicas[0]}/v1/search", json=body) as response:
                run = response.headers["X-Run-Id"]
                last = ""
                async for raw in response.content:
                    line = raw.decode().strip()
                    if line.startswith("id: "):
                        last = line[4:]
                    if last == "3":
                        break
            started = time.monotonic()
            headers = {"Last-Event-ID": last}
            async with http.get(f"{replicas[1]}/v1/runs/{run}/events", headers=headers) as response:
                async for raw in response.content:
                    if raw.startswith(b"id: "):
                        latencies.append(time.monotonic() - started)
                        break
                async for _raw in response.content:  # to the end: the next run starts on a quiet fleet
                    pass
    return latencies


async def session_memory(redis_url: str, count: int = 1000) -> float:
    """Bytes of Redis memory per session of one turn."""
    from mindsearch import Settings
    from mindsearch._store import open_store

    store = open_store(Settings(redis_url=redis_url, redis_prefix="membench"))
    redis: Any = store.redis
    before = int((await redis.info("memory"))["used_memory"])
    for index in range(count):
        session = await store.sessions.issue(f"token:{index:064x}")
        await store.sessions.append(session, f"What is the value of item {index}? " + "x" * 30, "y" * 600)
    after = int((await redis.info("memory"))["used_memory"])
    await store.close()
    return (after - before) / count


async def measure(
    seconds: float, ttft: float, tps: float, workers: tuple[int, ...] = WORKERS
) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="mindsearch-scale-"))
    deployment = Deployment(folder, ttft, tps)
    results: dict[str, Any] = {"workers": {}}
    try:
        cap = JOBS * max(workers)
        deployment.start_replicas(2, cap)
        for count in workers:
            deployment.set_workers(count, cap)
            results["workers"][count] = await throughput(deployment.replicas, JOBS * count, seconds)
        results["resume"] = await resume_latency(deployment.replicas, 10)
        results["session_bytes"] = await session_memory(deployment.env["MINDSEARCH_REDIS_URL"])
    finally:
        deployment.close()
        shutil.rmtree(folder, ignore_errors=True)
    return results


def render(results: dict[str, Any], seconds: float, ttft: float, tps: float) -> str:
    one = results["workers"][min(results["workers"])]["runs_per_minute"] or 1.0
    rows = [
        f"| {count} | {JOBS * count} | {r['runs_per_minute']:.0f} | {r['runs_per_minute'] / one:.2f}x | "
        f"{r['median_run']:.2f} |"
        for count, r in sorted(results["workers"].items())
    ]
    resume = sorted(results["resume"])
    return "\n".join(
        [
            f"Simulated model: {ttft:g} s to the first token, {tps:g} pieces/s; one sub-question per question, "
            f"4 model calls per run; {seconds:g} s per row; two API replicas; clients = runs in flight = "
            "4 per worker.",
            "",
            "| workers | clients | runs/min | vs 1 worker | median run (s) |",
            "| --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"Stream resume on the other replica with Last-Event-ID (time to its first event, {len(resume)} runs): "
            f"median {1000 * statistics.median(resume):.1f} ms, worst {1000 * resume[-1]:.1f} ms.",
            "",
            f"Redis memory per session of one turn (60-character question, 600-character answer): "
            f"{results['session_bytes']:.0f} bytes, {results['session_bytes'] * 1000 / 2**20:.2f} MiB per "
            "1,000 sessions.",
            "",
            "All processes (replicas, workers, Redis, the simulated model and the clients) share the "
            "machine's two cores; a run waits on the simulated model most of its time, so adding workers adds "
            "throughput until those cores are busy. On separate machines each worker brings its own cores.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--ttft", type=float, default=0.5)
    parser.add_argument("--tps", type=float, default=50)
    parser.add_argument("--upstream", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream:
        asyncio.run(upstream(args.upstream, args.ttft, args.tps))
        return
    results = asyncio.run(measure(args.seconds, args.ttft, args.tps))
    body = render(results, args.seconds, args.ttft, args.tps)
    command = f"python -m benchmarks.scale --seconds {args.seconds:g}"
    write_section("scale", "Scale out: workers, resume, Redis memory", command, body, DOC)
    print(body)


if __name__ == "__main__":
    main()

"""Real Redis and real processes for the scale-out tests: a private redis-server on a free loopback port
(AOF on, in a temporary folder, removed afterwards), and a fleet of API replicas and workers as
``mindsearch serve`` and ``mindsearch worker`` processes. Nothing here mocks Redis or the network."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFIX = "t"
OPERATOR = "operator-key-for-the-fleet-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not come up within {timeout:g} s")


@dataclass
class RedisServer:
    """A private redis-server; ``stop`` and ``start`` again keep its data (append-only file)."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is missing: apt-get install redis-server (.ci/run does)")
        self.process = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)),
                *("--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_until(answers, "redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    folder = Path(tempfile.mkdtemp(prefix="mindsearch-redis-"))
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDSEARCH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


@dataclass
class Fleet:
    """Two API replicas (``a``, ``b``) and two workers (``w1``, ``w2``) on one Redis, the upstream
    (model and pages) in its own process, and two user keys (``alice``, ``bob``)."""

    redis: RedisServer
    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    site: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> None:
        """Start replica (``a``, ``b``) or worker (``w1``, ``w2``) ``name`` (again, after ``kill``)."""
        log = open(self.folder / f"{name}.log", "ab")
        env = child_env({**self.env, "MINDSEARCH_DATA_DIR": str(self.folder / name)})
        if name.startswith("w"):
            command = [sys.executable, "-m", "mindsearch", "worker"]
        else:
            self.ports.setdefault(name, free_port())
            command = [sys.executable, "-m", "mindsearch", "serve", "--port", str(self.ports[name])]
        self.procs[name] = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=log)

    def wait_ready(self, name: str) -> None:
        if name.startswith("w"):  # a worker says it is alive in Redis (RunLog.present)
            import redis

            pid = self.procs[name].pid

            def alive() -> bool:
                client = redis.Redis(port=self.redis.port, decode_responses=True)
                try:
                    members = client.zrangebyscore(f"{PREFIX}:workers", client.time()[0] * 1000, "+inf")
                finally:
                    client.close()
                return any(str(member).endswith(f":{pid}") for member in members)

            wait_until(alive, f"worker {name}", 60)
            return

        def up() -> bool:
            process = self.procs[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {(self.folder / f'{name}.log').read_text()[-2000:]}")
            request = urllib.request.Request(
                self.url(name) + "/v1/models", headers={"Authorization": f"Bearer {self.keys['alice']}"}
            )
            with urllib.request.urlopen(request, timeout=1) as response:
                return response.status == 200

        wait_until(up, f"replica {name}", 60)

    def kill(self, name: str) -> None:
        process = self.procs[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.procs.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        for process in self.procs.values():
            process.wait(10)


@pytest.fixture(scope="module")
def fleet(redis_server: RedisServer) -> Iterator[Fleet]:
    folder = Path(tempfile.mkdtemp(prefix="mindsearch-fleet-"))
    fleet = Fleet(redis_server, folder)
    portfile = folder / "upstream.json"
    log = open(folder / "upstream.log", "ab")
    fleet.procs["upstream"] = subprocess.Popen(
        [sys.executable, "-m", "tests.scale.upstream", str(portfile)],
        env=child_env({}),
        cwd=REPO,
        stdout=log,
        stderr=log,
    )
    try:
        wait_until(
            lambda: portfile.exists() and portfile.read_text().endswith("}"), "the fake model and site"
        )
        ports = json.loads(portfile.read_text())
        fleet.site = ports["site"]
        fleet.env = {
            "MINDSEARCH_REDIS_URL": redis_server.url,
            "MINDSEARCH_API_KEY": OPERATOR,  # the operator's key: /health details
            "MINDSEARCH_REDIS_PREFIX": PREFIX,
            "MINDSEARCH_LLM": "openai",
            "MINDSEARCH_BASE_URL": f"http://127.0.0.1:{ports['model']}/v1",
            "MINDSEARCH_MODEL": "fake-model",
            "MINDSEARCH_ENGINES": "searxng",
            "MINDSEARCH_SEARXNG_URL": f"http://127.0.0.1:{ports['site']}",
            "MINDSEARCH_ALLOW_HOSTS": f"127.0.0.1:{ports['site']}",
            "MINDSEARCH_HYBRID_RANKING": "off",
            "MINDSEARCH_MAX_CONCURRENT_RUNS": "2",
            "MINDSEARCH_RUN_LEASE": "3",
            "MINDSEARCH_LOG_FORMAT": "text",
            "MINDSEARCH_LOG_LEVEL": "warning",
        }
        for user in ("alice", "bob"):
            made = subprocess.run(
                [sys.executable, "-m", "mindsearch", "keys", "add", user],
                env=child_env(fleet.env),
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            fleet.keys[user] = made.stdout.strip()
        names = ["a", "b", "w1", "w2"]
        for name in names:
            fleet.start(name)
        for name in names:
            fleet.wait_ready(name)
        yield fleet
    finally:
        fleet.stop_all()
        if not os.environ.get("KEEP_FLEET_LOGS"):
            shutil.rmtree(folder, ignore_errors=True)

"""Writes one benchmark's section of docs/benchmarks.md, with the date, the machine, the commit and how
busy the machine was (its 1-minute load average when the benchmark started and when it ended: other
work on a shared 2-core machine slows every timed figure)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Each section is written by the script named in it, measured in one run on the machine it names.
Figures are wall-clock on shared 2-core machines: compare ratios within a section, not across runs.
"""


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


STARTED_LOAD = load_average()  # this module is imported when a benchmark starts


def machine() -> str:
    memory = ""
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
        memory = f", {kib / 2**20:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores{memory}, {system}"


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout
        return out.stdout.strip() + ("+changes" if dirty.strip() else "")
    except OSError:
        return "unknown"


def write_section(key: str, title: str, command: str, body: str, path: Path = DOC) -> None:
    """Replace (or add) the section ``key`` of the report."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ended = load_average()
    busy = (
        f" (1-minute load average {STARTED_LOAD:.1f} when it started, {ended:.1f} when it ended, its own "
        "processes included)"
        if STARTED_LOAD is not None and ended is not None
        else ""
    )
    section = (
        f"<!-- {key}:start -->\n## {title}\n\n"
        f"Measured {stamp} on {machine()}{busy}, commit {commit()}, with `{command}`.\n\n"
        f"{body.strip()}\n<!-- {key}:end -->"
    )
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(rf"<!-- {re.escape(key)}:start -->.*?<!-- {re.escape(key)}:end -->", re.DOTALL)
    text = (
        pattern.sub(lambda _m: section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section + "\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)

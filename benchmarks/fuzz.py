"""Fuzzing figures: runs the schemathesis test of the API and records how many cases each route got.

python -m benchmarks.fuzz        # writes its section of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import DOC, ROOT, write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    report = Path(tempfile.mkdtemp()) / "fuzz.json"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/security/test_fuzz_api.py"],
        cwd=ROOT,
        env={**os.environ, "FUZZ_REPORT": str(report)},
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    counts = json.loads(report.read_text()) if report.exists() else {}
    rows = ["| operation | generated cases | 5xx |", "| --- | --- | --- |"]
    failed = result.returncode != 0
    main = {op: n for op, n in counts.items() if n > 1}
    other = {op: n for op, n in counts.items() if n <= 1}
    for operation, count in sorted(main.items()):
        rows.append(f"| `{operation}` | {count} | {'see log' if failed else 0} |")
    if other:
        rows.append(
            f"| {len(other)} other method/route pairs (405 or plain GETs) | {sum(other.values())} | "
            f"{'see log' if failed else 0} |"
        )
    verdict = "met" if not failed and sum(counts.values()) >= 500 else "MISSED"
    body = "\n".join(rows) + (
        f"\n\n{sum(counts.values())} cases in {seconds:.0f} s (schemathesis against the app's OpenAPI spec, "
        f"in process, with the scripted model). Goal >= 500 cases and zero 5xx: **{verdict}**. "
        "With `MINDSEARCH_API_KEY` set, every route but `/health` refused a missing or wrong token "
        f"(`test_with_a_key_every_route_but_health_refuses_missing_or_wrong_tokens`: "
        f"{'passed' if not failed else 'see log'})."
    )
    write_section("fuzz", "API fuzzing", "python -m benchmarks.fuzz", body, args.output)
    print(body)
    if failed:
        print(result.stdout[-3000:])
        sys.exit(1)


if __name__ == "__main__":
    main()

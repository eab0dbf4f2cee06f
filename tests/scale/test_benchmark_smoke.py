"""benchmarks/scale.py runs end to end (a few seconds, one worker): what docs/benchmarks.md reports."""

from __future__ import annotations

from benchmarks import scale


async def test_scale_benchmark_smoke() -> None:
    results = await scale.measure(5, 0.01, 1000, workers=(1,))
    assert results["workers"][1]["runs_per_minute"] > 0
    assert len(results["resume"]) == 10 and max(results["resume"]) < 5
    assert 0 < results["session_bytes"] < 20_000
    assert "runs/min" in scale.render(results, 5, 0.01, 1000)

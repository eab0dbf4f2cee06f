"""Benchmarks: one script per table in docs/benchmarks.md. Timed figures live there, never in tests."""

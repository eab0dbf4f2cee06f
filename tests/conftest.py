"""Shared fixtures: every test runs in an empty folder with no MINDSEARCH_* variables (but hybrid ranking
off) and no model."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mindsearch import Settings
from mindsearch.testing import block_real_models

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "eval"


@pytest.fixture(autouse=True)
def _isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("MINDSEARCH_"):
            monkeypatch.delenv(name)
    # the dense model (mindsearch[dense], when installed) takes ~0.1 s a passage: tests that want hybrid
    # ranking ask for it (tests/unit/test_retrieval.py); the rest rank with BM25, as without the extra
    monkeypatch.setenv("MINDSEARCH_HYBRID_RANKING", "off")
    monkeypatch.chdir(tmp_path)
    if request.node.get_closest_marker("model"):
        yield
        return
    with block_real_models():
        yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def shared() -> Path:
    if not SHARED.exists():
        pytest.fail(f"the shared evaluation data is missing at {SHARED}")
    return SHARED


def other_tasks() -> set[asyncio.Task[object]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}

"""Every reply style of the corpus (cases.py), replayed through the whole pipeline over a real server.

One test per case: ``MindSearch`` with the OpenAI-compatible backend pointed at a ``FakeOpenAIServer``
on 127.0.0.1 and a ``MemoryEngine`` of small documents; the model writes the case's reply at its stage
and plain replies elsewhere; ``checks.check_outcome`` lists what a reader would see wrong.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mindsearch import events as ev

from .cases import CASES, Case
from .checks import check_outcome
from .harness import run_case


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_reply_style(case: Case, tmp_path: Path) -> None:
    outcome = await run_case(case, tmp_path / "data")
    problems = check_outcome(case, outcome)
    if case.expect.same_as_whole and not problems:
        whole = await run_case(case, tmp_path / "whole", how="whole")
        if whole.done.answer != outcome.done.answer:
            problems.append(f"cut {case.split!r}: {outcome.done.answer!r}; whole: {whole.done.answer!r}")
        cut = {e.node_id: e.answer for e in outcome.of(ev.NodeDone)}
        one = {e.node_id: e.answer for e in whole.of(ev.NodeDone)}
        if cut != one:
            problems.append(f"node answers differ: cut {case.split!r}: {cut}; whole: {one}")
    if problems:
        pytest.fail(f"{case.id} ({case.model}):\n- " + "\n- ".join(problems), pytrace=False)


def test_the_corpus_covers_every_stage_and_names_each_model() -> None:
    stages = Counter(case.stage for case in CASES)
    assert len(CASES) >= 40 and all(stages[s] >= 5 for s in ("plan", "answer", "write", "stream")), stages
    ids = [case.id for case in CASES]
    assert len(set(ids)) == len(ids), "case ids must be unique"
    assert all("/" in i and i.split("/")[0] for i in ids), "an id starts with the model family it imitates"

"""The README's promises about the default path: its example questions are answered by the demo corpus."""

from __future__ import annotations

import re
from pathlib import Path

from mindsearch.search.local import LocalEngine, open_local_index

ROOT = Path(__file__).resolve().parents[2]
STOP = {"The", "Are", "Who", "When", "Which", "Yes", "Both"}


def readme_rows() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("**What the demo corpus can answer.**", 1)[1].split("\n\n", 2)[1]
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("|")]
    return [(q.strip(), a.strip()) for q, a in rows[2:]]


def anchors(text: str) -> set[str]:
    """Numbers and capitalised names: what a source must hold for the text to be true."""
    words = set(re.findall(r"\b\d{3,4}\b|\b[A-Z][a-z]+\b", text))
    return words - STOP


async def test_every_example_question_in_the_readme_is_answered_by_the_demo_corpus(tmp_path: Path) -> None:
    rows = readme_rows()
    assert len(rows) >= 5, "the README lists a handful of questions that work"
    engine = LocalEngine(open_local_index(tmp_path / "data"))
    for question, answer in rows:
        hits = await engine.search(question, limit=10)
        found = " ".join(f"{h.title} {h.text}" for h in hits)
        missing = [w for w in anchors(question) | anchors(answer) if w not in found]
        assert not missing, f"{question!r}: the demo corpus does not hold {missing} for {answer!r}"

"""The prompts a small base model sees: their examples are invented, and nothing a user asks shares them."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from mindsearch._prompts import PROMPTS_DIR, echoes_examples, example_names

ROOT = Path(__file__).resolve().parents[2]
BASE = sorted((PROMPTS_DIR / "base").glob("*.md"))
FEW_SHOT = [
    p for p in BASE if p.stem.split(".")[0] in ("searcher", "writer", "planner", "queries", "rewrite")
]


def demo_corpus() -> str:
    with gzip.open(ROOT / "mindsearch" / "data" / "demo_corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        return "\n".join(json.loads(line)["text"] for line in lines)


def readme_questions() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    asked = re.findall(r'mindsearch ask "([^"]+)"', text)
    asked += re.findall(r'"(?:question|inputs|content)": "([^"]+)"', text)
    return [q for q in asked if q != "..."]


@pytest.mark.parametrize("path", FEW_SHOT, ids=lambda p: p.name)
def test_every_few_shot_prompt_names_its_invented_examples(path: Path) -> None:
    name, language = path.stem.split(".")
    names = example_names(name, style="base", language=language)
    assert names, f"{path.name} has no 'examples:' line"
    body = path.read_text(encoding="utf-8").split("## user", 1)[1]
    assert any(n in body for n in names), "the listed names are the ones the examples use"


def test_the_invented_names_are_in_no_document_of_the_demo_corpus() -> None:
    corpus = demo_corpus()
    names = {
        n
        for p in FEW_SHOT
        for n in example_names(p.stem.split(".")[0], style="base", language=p.stem.split(".")[1])
    }
    found = [n for n in names if len(n) > 4 and re.search(rf"\b{re.escape(n)}\b", corpus)]
    assert not found, f"invented example names found in the demo corpus: {found}"


def test_no_readme_question_shares_a_name_with_the_prompt_examples() -> None:
    questions = readme_questions()
    assert questions, "the README's example questions were not found"
    prompts = "\n".join(p.read_text(encoding="utf-8").split("## user", 1)[1] for p in FEW_SHOT)
    for question in questions:
        names = re.findall(r"(?<![.?!]\s)\b[A-Z][a-z]{2,}(?:\s+[A-Z][a-z]+)*", question)
        names = [
            n for n in names if n not in ("Who", "What", "When", "Where", "Which", "How", "The", "Are", "Is")
        ]
        shared = [n for n in names if n in prompts]
        assert not shared, f"README question {question!r} shares {shared} with the few-shot examples"


def test_a_copied_example_is_recognised_unless_the_sources_say_it_too() -> None:
    copied = "The Kessler Works was founded in 1887 by Otto and Emil Kessler [1]."
    assert echoes_examples(copied, "Who founded Pizza Hut?", name="searcher", style="base", language="en")
    sources = "[1] Kessler Works: founded in 1887 by Otto and Emil Kessler, a real maker of that name"
    assert echoes_examples(copied, sources, name="searcher", style="base", language="en") is None
    assert (
        echoes_examples("Emily Kessling wrote it.", "", name="searcher", style="base", language="en") is None
    )
    assert echoes_examples(
        "Kessler Works 是哪一年由谁创立的？", "Pizza Hut", name="searcher", style="base", language="zh"
    )

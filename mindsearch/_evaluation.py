"""``mindsearch eval``: answer the questions of a multi-hop QA set offline and score the answers.

Datasets: HotpotQA-style JSON (``context`` lists), MuSiQue-style JSON (``paragraphs``), or JSON Lines of
``{question, answer}`` with a separate corpus. The dataset's paragraphs (or the corpus) become a local
index, the pipeline answers each question, and one JSON line per question is appended to the results
file, so a run that is stopped resumes where it stopped.

Scores, honest about what a reader saw:

- **exact match and F1** (HotpotQA's normalisation) of the run's *short answer*: the last sub-question's
  short answer (the searchers write one; in a one-node run it is the answer's), "yes"/"no" when the
  answer starts so, else the names of the answer's first sentence. A sentence scored whole gets F1
  near 0 even when it is right, so it is not what is scored; an answer withheld because no source
  supports it ("I could not find an answer…") scores 0;
- **contains**: a gold answer (or alias), normalised, appears in the whole answer;
- **gold recall**: the share of the gold paragraphs among the passages the searchers were shown;
- **citation precision** over *every* answer (an answer citing nothing counts 0), and over the answers
  that cite something, with how many those are;
- withheld answers, complete runs, sub-questions and seconds per question.
"""

from __future__ import annotations

import asyncio
import json
import re
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._graph import SubQuestion
from ._short_answer import guess
from ._writer import not_found
from .citations import strip_markers
from .search.local import Document, LocalEngine, LocalIndex, iter_files, read_documents
from .state import RunState


# --- HotpotQA's official answer metrics ------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (HotpotQA's evaluation script)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token F1 as HotpotQA computes it: yes/no/noanswer must match exactly."""
    pred, truth = normalize_answer(prediction), normalize_answer(gold)
    special = {"yes", "no", "noanswer"}
    if (pred in special or truth in special) and pred != truth:
        return 0.0
    pred_tokens, truth_tokens = pred.split(), truth.split()
    common = Counter(pred_tokens) & Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def best_over(metric: Any, prediction: str, answers: list[str]) -> float:
    return max((metric(prediction, answer) for answer in answers), default=0.0)


def recall(found: set[str], gold: set[str]) -> float | None:
    return len(found & gold) / len(gold) if gold else None


def precision(cited: list[str], gold: set[str]) -> float | None:
    return sum(1 for c in cited if c in gold) / len(cited) if cited else None


def short_answer(answer: str) -> str:
    """The answer without citations and reference list."""
    text = re.sub(r"\s*\[\d+\]", "", answer).strip()
    return text


def contains(answer: str, gold: str) -> float:
    """1 when the normalised gold answer appears, as whole words, in the normalised answer."""
    needle = normalize_answer(gold)
    return float(bool(needle) and f" {needle} " in f" {normalize_answer(answer)} ")


NOT_FOUND = {not_found("en").strip(), not_found("zh").strip()}


def withheld(answer: str) -> bool:
    """Whether the run gave no answer: the sources did not support one (or it gave nothing)."""
    text = strip_markers(answer).strip()
    return not text or text in NOT_FOUND


def scored_answer(state: RunState) -> str:
    """What EM and F1 score: a few words, as a reader would take them from the run.

    "yes"/"no" when the answer starts so; else the short answer of the last sub-question (the one no
    other depends on; of several, the last planned) when it has one; else the names of the answer's
    first sentence the question does not hold; else the answer. Empty when the answer was withheld.
    """
    answer = short_answer(state.answer)
    if not state.finished or withheld(answer):
        return ""
    first = normalize_answer(answer).split()[:1]
    if first in (["yes"], ["no"]):
        return first[0]
    needed = {dep for node in state.nodes.values() for dep in node.depends_on}
    last = [n for n in state.nodes.values() if n.id not in needed and n.state == "done" and n.short_answer]
    if last:
        return last[-1].short_answer
    return guess(answer, state.question) or answer


# --- datasets ------------------------------------------------------------------------------------------
@dataclass
class Item:
    id: str
    question: str
    answers: list[str]
    gold: set[str] = field(default_factory=set)  # urls of gold paragraphs in the index
    plan: list[SubQuestion] | None = None  # the gold decomposition, when the dataset has one


@dataclass
class Dataset:
    items: list[Item]
    documents: list[Document]
    kind: str


def load_dataset(path: Path, corpus: list[Path] | None = None) -> Dataset:
    """Read HotpotQA / MuSiQue JSON, or JSONL ``{question, answer}`` (then ``corpus`` is required)."""
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        raise ValueError(f"{path}: expected a list of question records")
    paragraphs: dict[tuple[str, str], str] = {}
    documents: list[Document] = []

    def paragraph_url(title: str, text: str) -> str:
        key = (title, text)
        if key not in paragraphs:
            url = f"eval://{path.stem}/{len(paragraphs)}"
            paragraphs[key] = url
            documents.append(Document(title, text, url, str(path.resolve())))
        return paragraphs[key]

    items: list[Item] = []
    first = rows[0]
    if "paragraphs" in first:
        kind = "musique"
        for row in rows:
            urls = [paragraph_url(p["title"], p["paragraph_text"]) for p in row["paragraphs"]]
            gold = {urls[i] for i, p in enumerate(row["paragraphs"]) if p.get("is_supporting")}
            answers = [row["answer"], *row.get("answer_aliases", [])]
            items.append(Item(str(row["id"]), row["question"], answers, gold, oracle_plan(row)))
    elif "context" in first:
        kind = "hotpotqa"
        for row in rows:
            titles = {title for title, _ in row.get("supporting_facts", [])}
            gold = set()
            for title, sentences in row["context"]:
                url = paragraph_url(title, "".join(sentences).strip())
                if title in titles:
                    gold.add(url)
            items.append(
                Item(str(row.get("_id", row.get("id", len(items)))), row["question"], [row["answer"]], gold)
            )
    elif "question" in first and "answer" in first:
        kind = "jsonl"
        if not corpus:
            raise ValueError(f"{path}: a question/answer file needs --corpus (documents to search)")
        for index, row in enumerate(rows):
            answers = [row["answer"], *row.get("answer_aliases", [])]
            items.append(Item(str(row.get("id", index)), row["question"], answers))
    else:
        raise ValueError(
            f"{path}: records need 'paragraphs' (MuSiQue), 'context' (HotpotQA) or question/answer"
        )
    for corpus_path in iter_files(corpus or []):
        documents.extend(read_documents(corpus_path))
    return Dataset(items, documents, kind)


def oracle_plan(row: dict[str, Any]) -> list[SubQuestion] | None:
    """MuSiQue's gold decomposition as a plan: step k is ``qk``; ``#j`` makes it depend on ``qj``."""
    steps = row.get("question_decomposition") or []
    plan = []
    for k, step in enumerate(steps, start=1):
        deps = sorted({f"q{j}" for j in re.findall(r"#(\d+)", step["question"]) if int(j) < k})
        plan.append(SubQuestion(id=f"q{k}", question=step["question"], depends_on=deps))
    return plan or None


# --- running ---------------------------------------------------------------------------------------------
def build_index(dataset: Dataset, directory: Path) -> LocalIndex:
    index = LocalIndex(directory)
    if index.num_docs != len(dataset.documents):
        index.add(dataset.documents)
    return index


def done_ids(results: Path) -> set[str]:
    if not results.exists():
        return set()
    ids = set()
    for line in results.read_text(encoding="utf-8").splitlines():
        try:
            ids.add(str(json.loads(line)["id"]))
        except (json.JSONDecodeError, KeyError):
            continue  # a line cut by a crash is simply redone
    return ids


async def evaluate_item(engine: Any, item: Item, oracle: bool) -> dict[str, Any]:
    """Answer one item and score it from the run's state: what was read, cited and answered."""
    state = RunState()
    async for event in engine.stream(item.question, plan=item.plan if oracle else None):
        state.apply(event)
    answer = state.answer if state.finished else ""  # without ``done`` there is no answer to score
    cited = [ref.url for ref in state.references] if state.finished else []
    scored = scored_answer(state)
    cited_precision = precision(cited, item.gold) if item.gold else None
    return {
        "id": item.id,
        "question": item.question,
        "gold_answers": item.answers,
        "answer": answer,
        "short_answer": scored,
        "em": best_over(exact_match, scored, item.answers),
        "f1": best_over(f1_score, scored, item.answers),
        "contains": best_over(contains, short_answer(answer), item.answers),
        "withheld": withheld(answer),
        "gold_recall": recall(state.sources_read(), item.gold),
        # every answer counts: one that cites nothing is 0 (``citation_precision_cited`` skips it)
        "citation_precision": (cited_precision or 0.0) if item.gold else None,
        "citation_precision_cited": cited_precision,
        "nodes": len(state.nodes),
        "seconds": state.seconds,
        "ok": state.ok,
        "errors": [f"{error.stage}: {error.message}" for error in state.errors[:5]],
    }


async def run_eval(
    engine: Any,
    items: Iterable[Item],
    results: Path,
    *,
    oracle: bool,
    concurrency: int,
    progress: Any = None,
) -> None:
    """Answer the items not yet in ``results``, appending one line each as soon as it is done."""
    semaphore = asyncio.Semaphore(concurrency)
    results.parent.mkdir(parents=True, exist_ok=True)

    async def one(item: Item) -> None:
        async with semaphore:
            row = await evaluate_item(engine, item, oracle)
        with results.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        if progress is not None:
            progress()

    await asyncio.gather(*(one(item) for item in items))


def summarize(results: Path, ids: set[str] | None = None) -> dict[str, Any]:
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    if ids is not None:
        rows = [r for r in rows if str(r["id"]) in ids]

    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return sum(values) / len(values) if values else None

    return {
        "questions": len(rows),
        "em": mean("em"),
        "f1": mean("f1"),
        "contains": mean("contains"),
        "gold_recall": mean("gold_recall"),
        "citation_precision": mean("citation_precision"),
        "citation_precision_cited": mean("citation_precision_cited"),
        "cited": sum(1 for r in rows if r.get("citation_precision_cited") is not None),
        "nodes": mean("nodes"),
        "seconds": mean("seconds"),
        "answered": sum(1 for r in rows if r.get("ok")),  # complete: every step answered (done.ok)
        "withheld": sum(1 for r in rows if r.get("withheld")),
    }


TABLE_HEADER = (
    "| questions | complete | withheld | EM | F1 | contains | gold recall | citation precision, all "
    "(cited only, n) | nodes/question | s/question |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
)


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_cells(summary: dict[str, Any]) -> str:
    """One table row's cells (without the leading ``|``) for ``summary``."""
    return (
        f" {summary['questions']} | {summary['answered']} | {summary.get('withheld', 0)} | "
        f"{fmt(summary['em'])} | {fmt(summary['f1'])} | {fmt(summary.get('contains'))} | "
        f"{fmt(summary['gold_recall'])} | {fmt(summary['citation_precision'])} "
        f"({fmt(summary.get('citation_precision_cited'))}, {summary.get('cited', 0)}) | "
        f"{fmt(summary['nodes'], 2)} | {fmt(summary['seconds'], 1)} |"
    )


def summary_markdown(summary: dict[str, Any], title: str) -> str:
    return f"### {title}\n\n{TABLE_HEADER}|{summary_cells(summary)}\n\n{LEGEND}\n"


LEGEND = (
    "EM and F1 score the short answer (the last sub-question's, or yes/no, or the names of the "
    "answer's first sentence); contains: a gold answer appears in the whole answer; complete: every "
    "step answered; withheld: no source supported an answer, so none was given (scored 0); citation "
    "precision counts every answer (one citing nothing is 0), then only those that cite, with their "
    "number."
)


def local_engine_for(dataset: Dataset, directory: Path) -> LocalEngine:
    return LocalEngine(build_index(dataset, directory))

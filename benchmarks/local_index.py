"""The local index: build time, queries per second and recall@10 of gold paragraphs.

    python -m benchmarks.local_index       # writes its section of docs/benchmarks.md

Corpus: the three shared corpora merged (about 9,000 Wikipedia paragraphs). Queries: the gold
sub-questions of the 100 shared MuSiQue questions that need no earlier answer (no ``#k``); a hit is the
gold paragraph (same title and text) among the first 10. Side by side: mindsearch's tantivy index and
SQLite FTS5 (bm25, the same query words OR-ed).
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import tempfile
import time
from pathlib import Path

from benchmarks.report import DOC, ROOT, write_section
from mindsearch._text import tokens
from mindsearch.search.local import Document, LocalIndex, read_documents

DATA = ROOT.parent / "shared" / "eval" / "hipporag_v1"


def corpus() -> list[Document]:
    docs: dict[tuple[str, str], Document] = {}
    for name in ("musique_train_corpus.json", "hotpotqa_train_corpus.json", "2wikimultihopqa_corpus.json"):
        for doc in read_documents(DATA / name):
            docs.setdefault((doc.title, doc.text), doc)
    return list(docs.values())


def queries() -> list[tuple[str, tuple[str, str]]]:
    out = []
    for row in json.loads((DATA / "musique_train.json").read_text()):
        for step in row["question_decomposition"]:
            if "#" not in step["question"]:
                gold = row["paragraphs"][step["paragraph_support_idx"]]
                out.append((step["question"], (gold["title"], gold["paragraph_text"])))
    return out


def bench_tantivy(docs: list[Document], qs: list[tuple[str, tuple[str, str]]]) -> dict[str, float]:
    index = LocalIndex(Path(tempfile.mkdtemp()))
    started = time.perf_counter()
    index.add(docs)
    build = time.perf_counter() - started
    started = time.perf_counter()
    hits = [index.search(q, 10) for q, _ in qs]
    search = time.perf_counter() - started
    found = sum(
        gold in {(h.title, h.text) for h in result} for (_, gold), result in zip(qs, hits, strict=True)
    )
    return {"docs_per_s": len(docs) / build, "qps": len(qs) / search, "recall": found / len(qs)}


def bench_fts5(docs: list[Document], qs: list[tuple[str, tuple[str, str]]]) -> dict[str, float]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body)")
    started = time.perf_counter()
    db.executemany("INSERT INTO docs VALUES (?, ?)", [(d.title, d.text) for d in docs])
    db.commit()
    build = time.perf_counter() - started
    started = time.perf_counter()
    results = []
    for question, _ in qs:
        words = [t for t in tokens(question) if re.fullmatch(r"\w+", t)]
        match = " OR ".join(f'"{w}"' for w in words)
        rows = db.execute(
            "SELECT title, body FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT 10", (match,)
        )
        results.append(set(rows.fetchall()))
    search = time.perf_counter() - started
    found = sum(gold in result for (_, gold), result in zip(qs, results, strict=True))
    return {"docs_per_s": len(docs) / build, "qps": len(qs) / search, "recall": found / len(qs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    docs, qs = corpus(), queries()
    rows = ["| index | build (documents/s) | queries/s | recall@10 |", "| --- | --- | --- | --- |"]
    for name, bench in (("tantivy (mindsearch)", bench_tantivy), ("SQLite FTS5", bench_fts5)):
        r = bench(docs, qs)
        rows.append(f"| {name} | {r['docs_per_s']:,.0f} | {r['qps']:,.0f} | {r['recall']:.3f} |")
    text = f"{len(docs):,} paragraphs, {len(qs)} gold sub-questions.\n\n" + "\n".join(rows) + "\n"
    write_section("index", "Local index", "python -m benchmarks.local_index", text, args.output)
    print(text)


if __name__ == "__main__":
    main()

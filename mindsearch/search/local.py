"""The local engine: a tantivy full-text index over the user's own documents, read in process.

``mindsearch index PATH...`` fills it from .txt, .md, .html and .json/.jsonl files. When nothing has
been indexed, a small demo corpus shipped with the package (real Wikipedia paragraphs) is used, so a
fresh install answers questions offline.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy

from ..text import tokens
from .base import SearchEngine, SearchHit

DEMO_CORPUS = Path(__file__).resolve().parent.parent / "data" / "demo_corpus.jsonl.gz"
INDEX_VERSION = 2  # raise when the schema changes; the demo index is then rebuilt
SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl")


@dataclass(frozen=True)
class Document:
    title: str
    text: str
    url: str  # a web URL when the record has one, else the file path (with #n for records in a file)
    source: str  # the file it came from; re-indexing that file replaces its documents


class IndexError_(RuntimeError):
    """The index cannot be opened or a file cannot be read; the message says which and why."""


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("title", stored=True)
    builder.add_text_field("body", stored=True)
    builder.add_text_field("url", stored=True, tokenizer_name="raw")
    builder.add_text_field("source", stored=True, tokenizer_name="raw")
    # our own tokens (words, and CJK character bigrams), so the index and the queries split text alike
    builder.add_text_field("terms", stored=False)
    return builder.build()


def _terms(title: str, text: str) -> str:
    title_terms = " ".join(tokens(title))
    return f"{title_terms} {title_terms} {' '.join(tokens(text))}"


class LocalIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.index = tantivy.Index(_schema(), path=str(path))
        except ValueError as exc:
            raise IndexError_(f"cannot open the index at {path}: {exc}") from exc

    @property
    def num_docs(self) -> int:
        self.index.reload()
        return int(self.index.searcher().num_docs)

    def add(self, documents: Iterable[Document]) -> int:
        writer = self.index.writer(heap_size=64_000_000, num_threads=1)
        count = 0
        replaced: set[str] = set()
        for doc in documents:
            if doc.source not in replaced:
                writer.delete_documents_by_term("source", doc.source)
                replaced.add(doc.source)
            writer.add_document(
                tantivy.Document(
                    title=doc.title,
                    body=doc.text,
                    url=doc.url,
                    source=doc.source,
                    terms=_terms(doc.title, doc.text),
                )
            )
            count += 1
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        return count

    def search(self, query: str, limit: int) -> list[SearchHit]:
        terms = [t for t in tokens(query) if re.fullmatch(r"\w+", t)]
        if not terms:
            return []
        parsed = self.index.parse_query(" ".join(dict.fromkeys(terms)), ["terms"])
        searcher = self.index.searcher()
        hits = []
        for _score, address in searcher.search(parsed, limit).hits:
            doc: dict[str, Any] = searcher.doc(address).to_dict()
            body = doc["body"][0]
            hits.append(
                SearchHit(
                    url=doc["url"][0], title=doc["title"][0], snippet=body[:300], engine="local", text=body
                )
            )
        return hits


class LocalEngine(SearchEngine):
    name = "local"
    is_web = False

    def __init__(self, index: LocalIndex) -> None:
        self.local_index = index

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        return self.local_index.search(query, limit)

    async def check(self) -> tuple[bool, str]:
        count = self.local_index.num_docs
        return count > 0, f"{count} documents in {self.local_index.path}"


def open_local_index(data_dir: Path) -> LocalIndex:
    """The user's index, or the demo index (built on first use) when the user has indexed nothing."""
    user = data_dir / "index"
    if user.exists() and LocalIndex(user).num_docs > 0:
        return LocalIndex(user)
    demo_dir = data_dir / "demo-index"
    marker = demo_dir / ".complete"
    stamp = f"{INDEX_VERSION}:{DEMO_CORPUS.stat().st_size}"
    if not marker.exists() or marker.read_text() != stamp:
        shutil.rmtree(demo_dir, ignore_errors=True)
        index = LocalIndex(demo_dir)
        index.add(read_demo_corpus())
        marker.write_text(stamp)
        return index
    return LocalIndex(demo_dir)


def read_demo_corpus() -> Iterator[Document]:
    with gzip.open(DEMO_CORPUS, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            yield Document(record["title"], record["text"], record["url"], "demo")


# --- ingestion --------------------------------------------------------------------------------------
def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            yield path
        else:
            raise IndexError_(f"{path}: no such file or directory")


def read_documents(path: Path) -> Iterator[Document]:
    """Documents in one file; raise IndexError_ with the file name when it cannot be read."""
    suffix = path.suffix.lower()
    source = str(path.resolve())
    try:
        if suffix in (".json", ".jsonl"):
            yield from _json_documents(path, source)
        elif suffix in (".html", ".htm"):
            from ..web.extract import TrafilaturaExtractor

            html = path.read_text(encoding="utf-8", errors="replace")
            extracted = TrafilaturaExtractor().extract(html, source)
            if extracted.text.strip():
                yield Document(extracted.title or path.stem, extracted.text, source, source)
        elif suffix in (".txt", ".md", ".markdown"):
            text = path.read_text(encoding="utf-8", errors="replace")
            if text.strip():
                first = text.strip().splitlines()[0].lstrip("# ").strip()
                title = first[:120] if suffix != ".txt" and first else path.stem
                yield Document(title, text, source, source)
        else:
            raise IndexError_(f"{path}: unsupported file type {suffix!r} (use {', '.join(SUFFIXES)})")
    except (OSError, UnicodeError, json.JSONDecodeError) as exc:
        raise IndexError_(f"{path}: {exc}") from exc


def _json_documents(path: Path, source: str) -> Iterator[Document]:
    if path.suffix.lower() == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            records: Any = [json.loads(line) for line in handle if line.strip()]
    else:
        records = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(records, dict):  # {title: [sentences]} or {title: text}
        records = [{"title": k, "text": v} for k, v in records.items()]
    if not isinstance(records, list):
        raise IndexError_(f"{path}: expected a list of {{title, text}} records or a {{title: text}} object")
    seen: set[tuple[str, str]] = set()
    for number, record in enumerate(_flatten(records)):
        if (record["title"], record["text"]) in seen:  # question files repeat paragraphs
            continue
        seen.add((record["title"], record["text"]))
        url = record.get("url") or f"{source}#{number}"
        yield Document(record["title"], record["text"], url, source)


def _flatten(records: list[Any]) -> Iterator[dict[str, str]]:
    """Accept {title, text} records, and the paragraphs inside HotpotQA and MuSiQue question files."""
    for record in records:
        if not isinstance(record, dict):
            continue
        if "paragraphs" in record:  # MuSiQue question
            for para in record["paragraphs"]:
                yield {"title": para["title"], "text": para["paragraph_text"]}
        elif "context" in record and isinstance(record["context"], list):  # HotpotQA question
            for title, sentences in record["context"]:
                yield {"title": title, "text": " ".join(sentences)}
        elif "text" in record or "paragraph_text" in record:
            text = record.get("text", record.get("paragraph_text", ""))
            if isinstance(text, list):
                text = " ".join(text)
            if str(text).strip():
                yield {
                    "title": str(record.get("title", "")),
                    "text": str(text),
                    "url": str(record.get("url", "")),
                }

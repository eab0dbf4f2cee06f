"""The local engine: a tantivy full-text index over the user's own documents, read in process.

``mindsearch index PATH...`` fills ``<data dir>/index`` from .txt, .md, .html and .json/.jsonl files;
``--list``, ``--remove PATH`` and ``--reset`` show, shrink and empty it. While it holds no documents, a
small demo corpus shipped with the package (real Wikipedia paragraphs, built into
``<data dir>/demo-index`` on first use) is searched instead, so a fresh install answers questions
offline. Your documents replace the demo corpus rather than join it: answers about your notes should
cite your notes, not Wikipedia paragraphs that happen to share a word.

A ``LocalEngine`` notices when the index on disk changes (another process committed to it, emptied it,
or replaced it) by looking at tantivy's ``meta.json``, which every commit replaces: one ``stat`` before
each search, and a reopen only when it changed. So a running server answers from what
``mindsearch index`` wrote in another terminal at its very next search.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import tantivy

from .._errors import MindSearchError
from .._text import tokens
from .base import SearchEngine, SearchError, SearchHit

logger = logging.getLogger(__name__)

DEMO_CORPUS = Path(__file__).resolve().parent.parent / "data" / "demo_corpus.jsonl.gz"
INDEX_VERSION = 2  # raise when the schema changes; the demo index is then rebuilt
SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl")
USER_INDEX = "index"  # <data dir>/index: what `mindsearch index` writes
DEMO_INDEX = "demo-index"  # <data dir>/demo-index: the bundled corpus, searched while USER_INDEX is empty
DEMO_SOURCE = "demo"
WRITER_HEAP = 64_000_000
LOCK_WAIT = 60.0  # seconds a writer waits for another process's writer to finish

Stamp = tuple[int, int, int, int] | None  # (device, inode, size, mtime) of an index's meta.json


@dataclass(frozen=True)
class Document:
    title: str
    text: str
    url: str  # a web URL when the record has one, else the file path (with #n for records in a file)
    source: str  # the file it came from; re-indexing that file replaces its documents


class IndexError_(MindSearchError, RuntimeError):
    """The index cannot be opened or a file cannot be read; the message says which and why."""


class IndexBusy(IndexError_):
    """Another process kept the index's writer lock for longer than we waited."""


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 document``, ``2 documents``, ``2,884 documents``."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def source_of(path: Path) -> str:
    """How a file is named in the index (and in ``--list``): its absolute, resolved path."""
    return str(path.expanduser().resolve())


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


def _meta_stamp(index_dir: Path) -> Stamp:
    """What identifies the last commit to the index in ``index_dir``: tantivy writes ``meta.json`` anew
    (a new file, renamed into place) at every commit, so any commit, emptying or replacement changes it."""
    try:
        stat = (index_dir / "meta.json").stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _live_sources(searcher: tantivy.Searcher) -> list[tuple[str, int]]:
    # counted through a query, so documents deleted but not yet merged away are not counted
    counts = searcher.terms_with_prefix("source", "", filter_query=tantivy.Query.all_query())
    return sorted((source, count) for source, count in counts if count > 0)


def is_under(source: str, target: str) -> bool:
    """Whether ``source`` is the file ``target`` or lies in the folder ``target``."""
    return source == target or source.startswith(target.rstrip(os.sep) + os.sep)


class LocalIndex:
    """One tantivy index on disk.

    ``data_dir`` is set on the index ``open_local_index`` chose for a data folder: a ``LocalEngine``
    over it then follows that folder (your index, or the demo corpus while yours is empty) as it changes.
    """

    def __init__(
        self, path: Path, *, create: bool = True, data_dir: Path | None = None, demo: bool = False
    ) -> None:
        self.path = path
        self.data_dir = data_dir
        self.demo = demo
        self.stamp: Stamp = _meta_stamp(path)  # taken before opening: a later commit is always noticed
        try:
            if create:
                path.mkdir(parents=True, exist_ok=True)
                self.index = tantivy.Index(_schema(), path=str(path))
            else:
                self.index = tantivy.Index.open(str(path))  # never creates an index where there is none
            # readers move to a new commit when we say so (reload), never behind our back
            self.index.config_reader(reload_policy="Manual")
        except (ValueError, OSError) as exc:
            raise IndexError_(f"cannot open the index at {path}: {exc}") from exc

    @property
    def num_docs(self) -> int:
        self.index.reload()
        return int(self.index.searcher().num_docs)

    def sources(self) -> list[tuple[str, int]]:
        """Each file the documents came from with its number of documents, by name; as last (re)loaded."""
        try:
            return _live_sources(self.index.searcher())
        except ValueError as exc:
            raise IndexError_(f"cannot read the index at {self.path}: {exc}") from exc

    def summary(self) -> str:
        """What the index holds, in a few words (``local index: 12 documents from 3 files``)."""
        searcher = self.index.searcher()
        if self.demo:
            return f"demo corpus: {searcher.num_docs:,} Wikipedia paragraphs"
        files = len(_live_sources(searcher))
        return f"local index: {plural(searcher.num_docs, 'document')} from {plural(files, 'file')}"

    @contextlib.contextmanager
    def writing(
        self, *, wait: float = LOCK_WAIT, on_wait: Callable[[], None] | None = None
    ) -> Iterator[IndexWriterSession]:
        """A writer whose changes are committed together when the block ends, or not at all if it raises.

        Only one process may write to an index at once: when another holds the writer, this waits up to
        ``wait`` seconds (calling ``on_wait`` once) and then raises ``IndexBusy``.
        """
        writer = self._writer(wait, on_wait)
        try:
            yield IndexWriterSession(writer)
            writer.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.rollback()
            raise
        finally:
            with contextlib.suppress(Exception):
                writer.wait_merging_threads()  # consumes the writer, which releases the lock
        self.index.reload()

    def _writer(self, wait: float, on_wait: Callable[[], None] | None) -> tantivy.IndexWriter:
        deadline = time.monotonic() + wait
        waited = False
        while True:
            try:
                return self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
            except ValueError as exc:
                if "LockBusy" not in str(exc):
                    raise IndexError_(f"cannot write to the index at {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise IndexBusy(
                        f"another process is writing to the index at {self.path} (a `mindsearch index` "
                        f"still running?); gave up after {wait:g} s"
                    ) from exc
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                time.sleep(0.1)

    def add(self, documents: Iterable[Document]) -> int:
        """Add documents in one commit; each source's earlier documents are replaced."""
        with self.writing() as writer:
            return writer.add(documents)

    def remove(
        self, paths: Iterable[Path | str], *, on_wait: Callable[[], None] | None = None
    ) -> list[tuple[str, int]]:
        """Remove every document from these files or from files in these folders, in one commit; return
        each source removed with its number of documents (empty when nothing matched)."""
        targets = [source_of(Path(p)) for p in paths]
        with self.writing(on_wait=on_wait) as writer:
            self.index.reload()  # under the writer lock: nobody else changes the index meanwhile
            removed = [(s, n) for s, n in self.sources() if any(is_under(s, t) for t in targets)]
            for source, _count in removed:
                writer.remove(source)
        return removed

    def clear(self, *, on_wait: Callable[[], None] | None = None) -> list[tuple[str, int]]:
        """Remove every document, in one commit; return what was removed, per source."""
        with self.writing(on_wait=on_wait) as writer:
            self.index.reload()
            removed = self.sources()
            writer.clear()
        return removed

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


@dataclass
class IndexWriterSession:
    """The changes of one ``LocalIndex.writing()`` block."""

    writer: tantivy.IndexWriter
    _replaced: set[str] = field(default_factory=set)

    def add(self, documents: Iterable[Document]) -> int:
        """Add documents; the first document of each source replaces that source's earlier documents."""
        count = 0
        for doc in documents:
            if doc.source not in self._replaced:
                self.remove(doc.source)
            self.writer.add_document(
                tantivy.Document(
                    title=doc.title,
                    body=doc.text,
                    url=doc.url,
                    source=doc.source,
                    terms=_terms(doc.title, doc.text),
                )
            )
            count += 1
        return count

    def replace(self, source: str, documents: Iterable[Document]) -> int:
        """The documents of ``source`` become these, even none (a file emptied since it was indexed)."""
        self.remove(source)
        return self.add(documents)

    def remove(self, source: str) -> None:
        self.writer.delete_documents_by_term("source", source)
        self._replaced.add(source)

    def clear(self) -> None:
        self.writer.delete_all_documents()


class LocalEngine(SearchEngine):
    """Searches a ``LocalIndex`` and follows it on disk.

    Before each search (and ``check``) one ``stat`` of the index's ``meta.json`` tells whether another
    process committed to it, emptied it or replaced it; only then is it reopened, off the event loop.
    Over the index ``open_local_index`` chose for a data folder, reopening chooses again, so the first
    ``mindsearch index`` moves a running server from the demo corpus to your documents and ``--reset``
    moves it back. When reopening fails, searches go on over the index as it was, ``check`` says why,
    and reopening is tried again after ``retry_after`` seconds.
    """

    name = "local"
    is_web = False

    def __init__(self, index: LocalIndex, *, retry_after: float = 1.0) -> None:
        self._index = index
        self._retry_after = retry_after
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self.error: str | None = None  # why the last reopen failed, until one succeeds

    @property
    def local_index(self) -> LocalIndex:
        """The index searched now (as of the last search or check)."""
        return self._index

    def _watched(self) -> Path:
        index = self._index
        return index.data_dir / USER_INDEX if index.data_dir is not None else index.path

    def changed(self) -> bool:
        """Whether the index on disk differs from the one open (and a reopen is due)."""
        return _meta_stamp(self._watched()) != self._index.stamp and time.monotonic() >= self._retry_at

    def reopen(self) -> None:
        """Open the index again if it changed on disk (blocking; thread-safe)."""
        with self._lock:
            if not self.changed():
                return
            current = self._index
            try:
                if current.data_dir is not None:
                    fresh = open_local_index(current.data_dir)
                else:
                    fresh = LocalIndex(current.path, create=False)
            except (IndexError_, OSError, ValueError) as exc:
                self.error = str(exc)
                self._retry_at = time.monotonic() + self._retry_after
                logger.warning("local index changed on disk but cannot be reopened: %s", exc)
                return
            self._index, self.error = fresh, None

    async def _current(self) -> LocalIndex:
        if self.changed():
            await asyncio.to_thread(self.reopen)
        return self._index

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        index = await self._current()
        try:
            return index.search(query, limit)
        except ValueError as exc:
            raise SearchError(f"local index: {exc}") from exc

    async def check(self) -> tuple[bool, str]:
        index = await self._current()
        try:
            detail = index.summary()
            ok = index.index.searcher().num_docs > 0
        except ValueError as exc:
            return False, f"local index: {exc}"
        if self.error:
            return False, f"{detail}; it changed on disk but cannot be reopened: {self.error}"
        return ok, detail


def open_user_index(data_dir: Path, *, create: bool = False) -> LocalIndex | None:
    """The index ``mindsearch index`` writes (``<data dir>/index``); None when there is none yet and
    ``create`` is false. Raise ``IndexError_`` when it is there but cannot be read."""
    path = data_dir / USER_INDEX
    if create:
        return LocalIndex(path, data_dir=data_dir)
    try:
        exists = tantivy.Index.exists(str(path))
    except (ValueError, OSError):  # no such folder
        exists = False
    return LocalIndex(path, create=False, data_dir=data_dir) if exists else None


def open_local_index(data_dir: Path) -> LocalIndex:
    """The index searches use: yours when it holds documents, else the demo corpus (built on first use).

    The index returned follows ``data_dir``: a ``LocalEngine`` over it switches when that changes.
    """
    stamp = _meta_stamp(data_dir / USER_INDEX)  # before looking: a commit from now on is noticed
    user = open_user_index(data_dir)
    chosen = user if user is not None and user.num_docs > 0 else _demo_index(data_dir)
    chosen.stamp = stamp
    return chosen


@dataclass(frozen=True)
class ResetReport:
    removed: list[tuple[str, int]]  # each source that was in the index, with its number of documents
    unreadable: str | None = None  # why the index could not be read (it was deleted instead)


def reset_local_index(data_dir: Path, *, on_wait: Callable[[], None] | None = None) -> ResetReport:
    """Empty your index, so the demo corpus is searched again. An index that cannot even be opened (a
    broken or foreign folder) is moved aside and deleted."""
    path = data_dir / USER_INDEX
    try:
        index = open_user_index(data_dir)
    except IndexError_ as exc:
        _discard(path)
        return ResetReport([], unreadable=str(exc))
    return ResetReport(index.clear(on_wait=on_wait) if index is not None else [])


def _discard(path: Path) -> None:
    # renamed first, so nobody opens a half-deleted index under the old name
    trash = path.with_name(f"{path.name}.discarded-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with contextlib.suppress(FileNotFoundError):
        path.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def _demo_stamp() -> str:
    return f"{INDEX_VERSION}:{DEMO_CORPUS.stat().st_size}"


def _demo_ready(demo_dir: Path) -> bool:
    marker = demo_dir / ".complete"
    try:
        return marker.read_text() == _demo_stamp()
    except OSError:
        return False


def _demo_index(data_dir: Path) -> LocalIndex:
    """The demo corpus's index, built aside and renamed into place, so another process never opens a
    half-built one."""
    demo_dir = data_dir / DEMO_INDEX
    if not _demo_ready(demo_dir):
        data_dir.mkdir(parents=True, exist_ok=True)
        building = data_dir / f"{DEMO_INDEX}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            built = LocalIndex(building)
            built.add(read_demo_corpus())
            del built  # closed before its folder is renamed
            (building / ".complete").write_text(_demo_stamp())
            if not _demo_ready(demo_dir):  # another process may have built it meanwhile
                if demo_dir.exists():
                    _discard(demo_dir)  # an older version's
                with contextlib.suppress(OSError):  # lost a race: theirs is as good
                    building.rename(demo_dir)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return LocalIndex(demo_dir, create=False, data_dir=data_dir, demo=True)


@cache
def demo_corpus_size() -> int:
    """Paragraphs in the bundled demo corpus, counted without building its index."""
    with gzip.open(DEMO_CORPUS, "rt", encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def read_demo_corpus() -> Iterator[Document]:
    with gzip.open(DEMO_CORPUS, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            yield Document(record["title"], record["text"], record["url"], DEMO_SOURCE)


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
    source = source_of(path)
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

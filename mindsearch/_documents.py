"""Your own documents, uploaded (``POST /v1/documents``) or indexed (``mindsearch index --collection``).

A file's type is judged from its bytes, never from its name: PDF (``%PDF-``), DOCX (a ZIP holding
``word/document.xml``), then, for text, JSON, JSON Lines, HTML, Markdown or plain text. Text is taken out
with maintained, permissively licensed libraries: pypdf (BSD; pure Python, no system libraries) for PDF
and python-docx (MIT; on lxml, which mindsearch already needs) for DOCX. Each file becomes documents of a
tantivy index of its own collection: one per PDF page, one per heading of a DOCX, HTML or Markdown file,
one per JSON record. Their titles name the file and the page or heading, so a reference says where a
claim comes from ("report.pdf, page 3").

Everything in a file is untrusted: a file that cannot be read (broken, encrypted, a ZIP that would
unpack to more than ``upload_max_unzipped_bytes``, empty, over ``upload_max_file_bytes``) is refused
with a ``DocumentError`` that names it and says why; the caller's other files still land.

Collections belong to an owner, as sessions do (``mindsearch._sessions``): the digest of the caller's
bearer token, or ``open`` on a server without a key. Collections made with ``mindsearch index
--collection`` belong to ``shared``: every caller may search them, none may delete from them.
"""

from __future__ import annotations

import contextvars
import hashlib
import io
import json
import re
import secrets
import sqlite3
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from ._sessions import OPEN
from .search.base import SearchEngine, SearchError, SearchHit
from .search.local import Document, IndexError_, LocalIndex, _flatten
from .settings import Settings

Kind = Literal["pdf", "docx", "html", "markdown", "text", "json", "jsonl"]
SHARED = "shared"  # the owner of collections made by `mindsearch index --collection`
COLLECTION = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
# who the current run searches for: set by the server before a run starts (the run's tasks inherit it)
OWNER: contextvars.ContextVar[str] = contextvars.ContextVar("mindsearch_owner", default=OPEN)
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_MARKDOWN = re.compile(r"^(#{1,6} \S|[-*+] \S|\d+\. \S|```|> \S|\|.*\|\s*$)", re.MULTILINE)
_HTML = re.compile(r"^\s*(<!doctype html|<html[\s>]|<head[\s>]|<body[\s>])", re.IGNORECASE)
_HTML_TAGS = re.compile(r"<(p|div|h[1-6]|table|ul|ol|li|span|a|br|section|article)\b[^>]*>", re.IGNORECASE)
_BINARY = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\xd0\xcf\x11\xe0": "an old Office file (.doc, .xls): save it as .docx",
    b"\x1f\x8b": "a gzip archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
    b"\x7fELF": "a program",
    b"MZ": "a program",
}


class DocumentError(ValueError):
    """A file that cannot be taken in; ``status`` is the HTTP status the API answers with."""

    def __init__(self, filename: str, status: int, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename, self.status, self.reason = filename, status, reason


@dataclass(frozen=True)
class Part:
    """One searchable piece of a file: a PDF page, a heading's text, a JSON record."""

    label: str  # "page 3", a heading, a record's title; "" for a file with no parts
    text: str
    anchor: str  # the URL fragment that points at it: "page=3", a heading's slug, "" for the file


@dataclass(frozen=True)
class StoredDocument:
    id: str
    collection: str
    filename: str
    kind: str
    bytes: int
    parts: int
    created: float
    shared: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "collection": self.collection,
            "filename": self.filename,
            "type": self.kind,
            "bytes": self.bytes,
            "parts": self.parts,
            "created": self.created,
            "shared": self.shared,
        }


# -- reading a file ------------------------------------------------------------------------------------
def sniff(filename: str, data: bytes) -> Kind:
    """The file's type from its content; ``DocumentError`` (415) for anything else."""
    if not data:
        raise DocumentError(filename, 400, "the file is empty")
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "docx"  # a ZIP: whether it is a Word document is checked when it is read
    for magic, what in _BINARY.items():
        if data.startswith(magic):
            raise DocumentError(filename, 415, f"unsupported type: {what}")
    if b"\x00" in data[:8192]:
        raise DocumentError(filename, 415, "unsupported type: a binary file")
    text = decode(filename, data).lstrip()
    if text[:1] in "{[":
        try:
            json.loads(text)
            return "json"
        except ValueError:
            if _jsonl(text) is not None:
                return "jsonl"
    if _HTML.match(text) or len(_HTML_TAGS.findall(text[:4000])) >= 3:
        return "html"
    if _MARKDOWN.search(text):
        return "markdown"
    return "text"


def decode(filename: str, data: bytes) -> str:
    """Text in UTF-8 (with or without a BOM), else in the encoding charset-normalizer finds."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise DocumentError(filename, 415, "unsupported type: not text in any encoding")
    return str(best)


def _jsonl(text: str) -> list[Any] | None:
    records = []
    for line in text.splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                return None
    return records or None


def extract(filename: str, data: bytes, *, max_unzipped: int) -> tuple[Kind, list[Part]]:
    """The file's type and its searchable parts; ``DocumentError`` when it cannot be read or has no text."""
    kind = sniff(filename, data)
    try:
        if kind == "pdf":
            parts = _pdf(filename, data)
        elif kind == "docx":
            parts = _docx(filename, data, max_unzipped)
        elif kind == "html":
            parts = _html(decode(filename, data))
        elif kind == "markdown":
            parts = _sections(decode(filename, data))
        elif kind in ("json", "jsonl"):
            parts = _json(decode(filename, data), kind)
        else:
            parts = [Part("", decode(filename, data).strip(), "")]
    except DocumentError:
        raise
    except ImportError as exc:  # the optional reader is not installed on this server
        raise DocumentError(
            filename,
            415,
            f"{kind.upper()} files need the [documents] extra (pip install 'mindsearch[documents]')",
        ) from exc
    except Exception as exc:  # a library's error on a broken file: said in a few words, never a traceback
        raise DocumentError(filename, 422, f"cannot be read as {kind.upper()}: {_short(exc)}") from exc
    parts = [p for p in parts if p.text.strip()]
    if not parts:
        raise DocumentError(filename, 422, f"no text found in this {kind.upper()} file")
    return kind, parts


def _pdf(filename: str, data: bytes) -> list[Part]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(
                filename, 422, "the PDF is encrypted (password-protected): remove the password"
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except PdfReadError as exc:
        raise DocumentError(filename, 422, f"a broken PDF: {_short(exc)}") from exc
    if reader.is_encrypted and not any(p.strip() for p in pages):
        raise DocumentError(filename, 422, "the PDF is encrypted and gives no text")
    return [Part(f"page {n}", text, f"page={n}") for n, text in enumerate(pages, start=1)]


def _docx(filename: str, data: bytes, max_unzipped: int) -> list[Part]:
    """A Word document's text under its headings; tables as rows of cells. The ZIP's declared sizes are
    checked first (Python's zipfile never unpacks more than a member declares), so a zip bomb is refused
    before anything is unpacked."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DocumentError(filename, 422, f"a broken ZIP/DOCX file: {_short(exc)}") from exc
    with archive:
        members = archive.infolist()
        unpacked = sum(member.file_size for member in members)
        if unpacked > max_unzipped or len(members) > 10_000:
            raise DocumentError(
                filename,
                413,
                f"unpacks to {unpacked:,} bytes in {len(members):,} files (the limit is {max_unzipped:,} "
                "bytes, MINDSEARCH_UPLOAD_MAX_UNZIPPED_BYTES): refused as a possible zip bomb",
            )
        if "word/document.xml" not in archive.namelist():
            raise DocumentError(filename, 415, "unsupported type: a ZIP archive that is not a Word document")
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    parts: list[Part] = []
    heading, lines = "", list[str]()

    def flush() -> None:
        if lines:
            parts.append(Part(heading, "\n".join(lines), _slug(heading)))

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            style = (block.style.name if block.style is not None else "") or ""
            text = block.text.strip()
            if text and (style.startswith("Heading") or style == "Title"):
                flush()
                heading, lines = text, []
            elif text:
                lines.append(text)
        elif isinstance(block, Table):
            for row in block.rows:
                cells = [cell.text.strip() for cell in row.cells]
                if any(cells):
                    lines.append(" | ".join(cells))
    flush()
    return parts


def _html(html: str) -> list[Part]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "iframe", "object", "svg"]):
        tag.decompose()
    for level in range(1, 7):
        for tag in soup.find_all(f"h{level}"):
            tag.replace_with(f"\n\n{'#' * level} {tag.get_text(' ', strip=True)}\n\n")
    for row in soup.find_all("tr"):
        row.replace_with(" | ".join(c.get_text(" ", strip=True) for c in row.find_all(["td", "th"])) + "\n")
    text = re.sub(r"\n\s*\n+", "\n\n", soup.get_text("\n"))
    return _sections(text)


def _sections(text: str) -> list[Part]:
    """Markdown (or HTML made into it) split at its headings."""
    parts: list[Part] = []
    found = list(_HEADING.finditer(text))
    before = text[: found[0].start()] if found else text
    if before.strip():
        parts.append(Part("", before.strip(), ""))
    for index, match in enumerate(found):
        end = found[index + 1].start() if index + 1 < len(found) else len(text)
        body = text[match.end() : end].strip()
        heading = match.group(2).strip()
        if body:
            parts.append(Part(heading, f"{heading}\n{body}", _slug(heading)))
    return parts


def _json(text: str, kind: Kind) -> list[Part]:
    records: Any = _jsonl(text) if kind == "jsonl" else json.loads(text)
    if isinstance(records, dict):
        records = [{"title": k, "text": v} for k, v in records.items()]
    if not isinstance(records, list):
        records = [records]
    parts = []
    for number, record in enumerate(_flatten(records)):
        text_of = record["text"] if isinstance(record["text"], str) else json.dumps(record["text"])
        parts.append(Part(str(record["title"])[:200], text_of, f"record={number}"))
    if not parts:  # JSON of some other shape: its text, as it is
        parts.append(Part("", json.dumps(records, ensure_ascii=False, indent=1)[:1_000_000], ""))
    return parts


def _slug(heading: str) -> str:
    return quote(re.sub(r"\s+", "-", heading.strip().lower())[:80]) if heading else ""


def _short(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200] or type(exc).__name__


# -- the store -----------------------------------------------------------------------------------------
def owner_dir(owner: str) -> str:
    """A folder name for an owner: a digest, so a token's digest never appears as a path."""
    return SHARED if owner == SHARED else hashlib.sha256(owner.encode()).hexdigest()[:24]


class DocumentStore:
    """Collections of documents per owner: a tantivy index per collection under ``<data dir>/documents``,
    and what each upload holds in ``documents.sqlite3`` next to them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.data_dir / "documents"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.root.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.root / "documents.sqlite3"), timeout=5, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS documents (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                "collection TEXT NOT NULL, filename TEXT NOT NULL, kind TEXT NOT NULL, bytes INTEGER, "
                "parts INTEGER, created REAL)"
            )
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def index_path(self, owner: str, collection: str) -> Path:
        return self.root / owner_dir(owner) / collection

    def add(self, owner: str, collection: str, filename: str, data: bytes) -> StoredDocument:
        """Check, read and index one file (blocking: call off the event loop); ``DocumentError`` if not."""
        s = self.settings
        if not COLLECTION.match(collection):
            raise DocumentError(
                filename, 422, f"invalid collection name {collection!r} (letters, digits, - _)"
            )
        if len(data) > s.upload_max_file_bytes:
            raise DocumentError(
                filename,
                413,
                f"larger than {s.upload_max_file_bytes:,} bytes, the limit for one file "
                "(MINDSEARCH_UPLOAD_MAX_FILE_BYTES)",
            )
        kind, parts = extract(filename, data, max_unzipped=s.upload_max_unzipped_bytes)
        doc_id = secrets.token_hex(8)
        name = Path(filename.replace("\\", "/")).name[:200] or "document"
        documents = [
            Document(
                title=f"{name}, {part.label}" if part.label else name,
                text=part.text,
                url=f"documents/{doc_id}/{quote(name)}" + (f"#{part.anchor}" if part.anchor else ""),
                source=doc_id,
            )
            for part in parts
        ]
        with self._lock:
            try:
                LocalIndex(self.index_path(owner, collection)).add(documents)
            except IndexError_ as exc:
                raise DocumentError(filename, 503, f"the index cannot be written: {exc}") from exc
            stored = StoredDocument(doc_id, collection, name, kind, len(data), len(parts), time.time())
            self._db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_id, owner, collection, name, kind, len(data), len(parts), stored.created),
            )
        return stored

    def documents(self, owner: str, collection: str | None = None) -> list[StoredDocument]:
        """The owner's documents and the shared ones, oldest first."""
        rows = self._db.execute(
            "SELECT id, collection, filename, kind, bytes, parts, created, owner FROM documents "
            "WHERE owner IN (?, ?) AND (? IS NULL OR collection = ?) ORDER BY created",
            (owner, SHARED, collection, collection),
        ).fetchall()
        return [
            StoredDocument(
                str(row[0]),
                str(row[1]),
                str(row[2]),
                str(row[3]),
                int(row[4]),
                int(row[5]),
                float(row[6]),
                shared=row[7] == SHARED and owner != SHARED,
            )
            for row in rows
        ]

    def delete(self, owner: str, doc_id: str) -> bool:
        """Remove one of the owner's documents from its collection; False when it has none by that id."""
        with self._lock:
            row = self._db.execute(
                "SELECT collection FROM documents WHERE id = ? AND owner = ?", (doc_id, owner)
            ).fetchone()
            if row is None:
                return False
            index = LocalIndex(self.index_path(owner, str(row[0])))
            with index.writing() as writer:
                writer.remove(doc_id)
            self._db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return True

    def drop(self, owner: str, collection: str) -> int:
        """Remove a whole collection of the owner's; the number of documents it held."""
        import shutil

        with self._lock:
            count = self._db.execute(
                "SELECT COUNT(*) FROM documents WHERE owner = ? AND collection = ?", (owner, collection)
            ).fetchone()[0]
            self._db.execute("DELETE FROM documents WHERE owner = ? AND collection = ?", (owner, collection))
            shutil.rmtree(self.index_path(owner, collection), ignore_errors=True)
        return int(count)

    def collections(self, owner: str) -> dict[str, list[Path]]:
        """Each collection the owner may search, with its index folders (its own and the shared one)."""
        found: dict[str, list[Path]] = {}
        rows = self._db.execute(
            "SELECT DISTINCT owner, collection FROM documents WHERE owner IN (?, ?)", (owner, SHARED)
        ).fetchall()
        for row_owner, collection in rows:
            found.setdefault(str(collection), []).append(self.index_path(str(row_owner), str(collection)))
        return found


class CollectionsEngine(SearchEngine):
    """The ``local`` engine of a run restricted to collections: it searches their indexes only."""

    name = "local"
    is_web = False

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._indexes: list[LocalIndex] | None = None

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        import asyncio

        return await asyncio.to_thread(self._search, query, limit)

    def _search(self, query: str, limit: int) -> list[SearchHit]:
        if self._indexes is None:
            try:
                self._indexes = [LocalIndex(path, create=False) for path in self.paths]
            except IndexError_ as exc:
                raise SearchError(f"local collections: {exc}") from exc
        results = []
        for index in self._indexes:
            index.index.reload()
            results.append(index.search(query, limit))
        merged: list[SearchHit] = []
        for rank in range(limit):  # one from each collection in turn, best first
            merged.extend(hits[rank] for hits in results if rank < len(hits))
        return merged[:limit]


def scoped_engines(engines: list[SearchEngine], settings: Settings) -> list[SearchEngine]:
    """The run's engines, its ``local`` engine restricted to ``settings.collections`` of the run's owner.
    ``LookupError`` names a collection the owner has not got, or says that ``local`` is not searched."""
    if not settings.collections:
        return engines
    if not any(engine.name == "local" for engine in engines):
        raise LookupError("collections are searched by the local engine: add local to engines")
    store = DocumentStore(settings)
    try:
        known = store.collections(OWNER.get())
    finally:
        store.close()
    missing = [name for name in settings.collections if name not in known]
    if missing:
        raise LookupError(
            f"no such collection: {', '.join(missing)} (upload to it first: POST /v1/documents)"
        )
    paths = [path for name in settings.collections for path in known[name]]
    return [CollectionsEngine(paths) if e.name == "local" else e for e in engines]


def iter_paths(paths: list[Path]) -> Iterator[Path]:
    """Every file under these files and folders (what `mindsearch index --collection` reads)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path

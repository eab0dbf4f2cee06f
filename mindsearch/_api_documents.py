"""The REST API's documents routes: upload (``POST /v1/documents``), list, delete.

Kept apart from ``mindsearch.api`` (which only calls ``add_document_routes``): reading files is
``mindsearch._documents``'s work; here are the HTTP rules. An upload is multipart: one or more ``files``
parts and an optional ``collection`` field (default ``default``). Every file is judged on its own: the
reply lists what landed and, per refused file, its name, a status and why; it is 201 when all landed,
207 when some did, and the refused files' status (or 422 when they differ) when none did. The whole body
is capped by ``upload_max_total_bytes`` (413 before anything is read), each file by
``upload_max_file_bytes``. Documents belong to the caller's credential, as sessions do.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from ._documents import COLLECTION, DocumentError, DocumentStore

if TYPE_CHECKING:
    from .api import Server

MAX_FILES = 100  # files in one upload


def add_document_routes(app: FastAPI, server: Server) -> DocumentStore:
    """Add the routes; the store they use is returned (the app closes it at shutdown)."""
    store = DocumentStore(server.settings)

    @app.post("/v1/documents", status_code=201)
    async def upload(request: Request) -> JSONResponse:
        """Upload files (multipart ``files``, optional ``collection``): PDF, DOCX, HTML, Markdown, text,
        JSON or JSON Lines, the type judged from the content. A file that cannot be taken in is named in
        ``errors`` with its status and why; the others land."""
        owner = await server.owner(request)
        try:
            form = await request.form(max_files=MAX_FILES, max_fields=10)
        except Exception as exc:  # not multipart, or over the part limits
            raise HTTPException(400, f"expected a multipart upload with files: {exc}") from exc
        collection = form.get("collection") or "default"
        if not isinstance(collection, str) or not COLLECTION.match(collection):
            raise HTTPException(422, "collection: letters, digits, - and _ only, at most 64")
        files = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
        if not files:
            raise HTTPException(422, "files: no file in the upload (send them as multipart 'files' parts)")
        landed: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        cap = server.settings.upload_max_file_bytes
        for item in files:
            name = item.filename or "upload"
            data = await item.read(cap + 1)  # never more than one byte past the cap in memory
            await item.close()
            try:
                stored = await asyncio.to_thread(store.add, owner, collection, name, data)
            except DocumentError as exc:
                errors.append({"file": name, "status": exc.status, "message": str(exc)})
            else:
                landed.append(stored.public())
        body: dict[str, Any] = {"collection": collection, "documents": landed, "errors": errors}
        if not errors:
            return JSONResponse(body, 201)
        if landed:
            return JSONResponse(body, 207)
        statuses = {error["status"] for error in errors}
        status = statuses.pop() if len(statuses) == 1 else 422
        body["error"] = {"message": "; ".join(e["message"] for e in errors)[:2000], "status": status}
        return JSONResponse(body, status)

    @app.get("/v1/documents")
    async def documents(request: Request, collection: str | None = None) -> JSONResponse:
        """The caller's documents and the server's shared ones (``shared``: true), oldest first."""
        owner = await server.owner(request)
        found = await asyncio.to_thread(store.documents, owner, collection)
        return JSONResponse({"documents": [doc.public() for doc in found]})

    @app.delete("/v1/documents/{doc_id}")
    async def delete(doc_id: str, request: Request) -> JSONResponse:
        """Remove one of the caller's documents from its collection (404 for another caller's)."""
        owner = await server.owner(request)
        if not await asyncio.to_thread(store.delete, owner, doc_id):
            raise HTTPException(404, "no such document")
        return JSONResponse({"deleted": doc_id})

    app.state.documents = store
    return store


def check_collections(request: Request, owner: str, names: list[str] | None) -> None:
    """422 before a run starts for a collection the caller has not got (its own or a shared one)."""
    if not names:
        return
    known = request.app.state.documents.collections(owner)
    missing = [name for name in names if name not in known]
    if missing:
        raise HTTPException(422, f"settings.collections: no such collection: {', '.join(missing)}")

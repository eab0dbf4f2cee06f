"""Finished runs kept for export: ``GET /v1/runs/{run_id}/export?format=md|html|pdf|docx``.

The server keeps the answer (or research report) and references of its last ``runs_kept`` finished
runs, in memory, each bound to the credential that asked (as sessions are): another caller's run is a
404, the same as one that was never there or has been dropped. The ``run_id`` is in ``run_started``
and in the non-streaming reply.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from . import events as ev
from ._exports import FORMATS, ExportError, export, report_of

if TYPE_CHECKING:
    from .api import Server


@dataclass(frozen=True)
class FinishedRun:
    owner: str
    question: str
    language: str
    answer: str
    references: list[ev.Reference]
    ok: bool
    finished: float


class FinishedRuns:
    """The last ``limit`` finished runs with an answer, oldest dropped first (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._runs: OrderedDict[str, FinishedRun] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, run_id: str, run: FinishedRun) -> None:
        if not run_id or not run.answer or self.limit <= 0:
            return
        with self._lock:
            self._runs[run_id] = run
            self._runs.move_to_end(run_id)
            while len(self._runs) > self.limit:
                self._runs.popitem(last=False)

    def get(self, run_id: str, owner: str) -> FinishedRun | None:
        with self._lock:
            run = self._runs.get(run_id)
        return run if run is not None and run.owner == owner else None


class RunRecorder:
    """Watches one run's events on their way to the client and keeps the run when it is done."""

    def __init__(self, runs: FinishedRuns, owner: str) -> None:
        self.runs, self.owner = runs, owner
        self.run_id, self.question, self.language = "", "", "en"

    def see(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.run_id, self.question, self.language = event.run_id, event.question, event.language
        elif isinstance(event, ev.Done):
            run = FinishedRun(
                self.owner,
                self.question,
                self.language,
                event.answer,
                list(event.references),
                event.ok,
                time.time(),
            )
            self.runs.keep(self.run_id, run)


def add_run_routes(app: FastAPI, server: Server) -> None:
    @app.get(
        "/v1/runs/{run_id}/export",
        response_class=Response,
        responses={200: {"content": {media: {} for media, _suffix in FORMATS.values()}}},
    )
    async def export_run(run_id: str, request: Request, format: str = "md") -> Response:
        """A finished run's answer or report with its references, as ``md``, ``html``, ``pdf`` or ``docx``."""
        if format not in FORMATS:
            raise HTTPException(422, f"format: choose from {', '.join(FORMATS)}")
        run = server.finished_runs.get(run_id, await server.owner(request))
        if run is None:
            raise HTTPException(404, "no such finished run (runs are kept for export while the server runs)")
        report = report_of(run.question, run.answer, run.references)
        try:
            font = server.settings.export_font
            data = await asyncio.to_thread(export, report, format, language=run.language, font=font)
        except (ExportError, ImportError) as exc:
            raise HTTPException(501, f"cannot export as {format} on this server: {exc}") from exc
        media, suffix = FORMATS[format]
        headers = {"Content-Disposition": f'attachment; filename="mindsearch-{run_id[:16]}{suffix}"'}
        return Response(data, media_type=media, headers=headers)

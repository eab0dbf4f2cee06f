"""The UI's calls for documents and exports (frontend/view.py), against the real REST app on loopback:
what the uploader sends lands in a collection the picker then lists, a refused file comes back named,
and a download button's bytes are the server's export."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from mindsearch import MindSearch, Settings
from mindsearch.api import create_app
from mindsearch.testing import AppServer, MemoryEngine, ScriptedModel

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
sys.path.insert(0, str(FRONTEND))
from view import ServerError, UIConfig, collections, export_bytes, upload_documents  # noqa: E402


async def test_the_uploader_lands_files_and_the_picker_lists_their_collection(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_keys=["visitor-key"])
    engine = MindSearch(settings, model=ScriptedModel(lambda request: "unused"), engines=[MemoryEngine([])])
    async with AppServer(create_app(settings, engine=engine)) as api:
        config = UIConfig(server_url=api.url, api_key="visitor-key")
        files = [("notes.md", b"# Plans\n\nThe dam opens in May.\n"), ("empty.txt", b"")]
        landed, refused = await asyncio.to_thread(upload_documents, config, files, "plans")
        assert landed == ["notes.md"]
        assert len(refused) == 1 and refused[0].startswith("empty.txt: ") and "empty" in refused[0]
        assert await asyncio.to_thread(collections, config) == ["plans"]
        other = UIConfig(server_url=api.url, api_key="wrong-key")
        with pytest.raises(ServerError):
            await asyncio.to_thread(export_bytes, other, "no-such-run", "pdf")
        assert await asyncio.to_thread(collections, UIConfig(server_url=api.url)) == []  # 401: none offered

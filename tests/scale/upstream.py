"""The fleet tests' upstream, as its own process: the fake OpenAI-compatible model and a fake SearXNG whose
hits point at pages it serves, all on 127.0.0.1. ``python -m tests.scale.upstream PORTFILE`` writes
``{"model": port, "site": port}`` to PORTFILE once both listen, then serves until killed.

Questions steer the fake model: one with "slow" streams its answer in many small pieces (seconds), one
with "stall" gets no reply for a minute (a run that holds its worker), any other answers at once.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from mindsearch.testing import FakeOpenAIServer, StaticSite, kind_of_body, plan_json

PAGE = (
    "<html><head><title>Jaws (film)</title></head><body><article><h1>Jaws</h1>"
    + "<p>Jaws is a 1975 American thriller film directed by Steven Spielberg, who was born in Cincinnati, "
    "Ohio, in 1946. The film is based on the 1974 novel by Peter Benchley.</p>"
    * 4
    + "</article></body></html>"
)
SLOW_ANSWER = (
    "Jaws is a 1975 American thriller film [1]. It was directed by Steven Spielberg [1]. Spielberg was born "
    "in Cincinnati, Ohio, in 1946 [1]. The film is based on the 1974 novel by Peter Benchley [1]."
)


def _prompt(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []))


async def reply(body: dict[str, Any]) -> Any:
    text = _prompt(body)
    if "Standalone question" in text:
        return "Where was Steven Spielberg born?"
    kind = kind_of_body(body)
    if kind == "plan":
        question = text.split("Question: ", 1)[1].split("\n", 1)[0]
        return plan_json(("q1", question, []))
    if kind == "queries":
        asked = text.split("Sub-question:", 1)[-1].split("\n", 1)[0].strip() or "jaws"
        return json.dumps({"queries": [asked]})
    asked = text.split("Sub-question:" if kind == "answer" else "Question:", 1)[-1][:80]
    if "stall" in asked:
        await asyncio.sleep(60)
    if "slow" in text and kind in ("answer", "write"):
        return [sentence + " " for sentence in SLOW_ANSWER.split(" ")]  # one word a piece
    if "born" in asked:
        return "Steven Spielberg was born in Cincinnati, Ohio [1]."
    return ["Jaws was directed ", "by Steven Spielberg [1]."]


async def main(portfile: Path) -> None:
    fetched: Counter[str] = Counter()

    async def searxng(request: web.Request) -> web.Response:
        query = request.query.get("q", "")
        url = f"http://127.0.0.1:{site.port}/page/{quote(query, safe='')}"
        result = {"url": url, "title": "Jaws (film)", "content": "Jaws is a 1975 film by Steven Spielberg."}
        return web.json_response({"results": [result]})

    async def page(request: web.Request) -> web.Response:
        fetched[request.path] += 1
        return web.Response(text=PAGE, content_type="text/html")

    async def counts(request: web.Request) -> web.Response:
        return web.json_response(dict(fetched))

    site = StaticSite(routes={"/search": searxng, "/page/{name}": page, "/fetched": counts})
    async with FakeOpenAIServer(reply, piece_delay=0.04, record=False) as model, site:
        portfile.write_text(json.dumps({"model": model.port, "site": site.port}))  # noqa: ASYNC240
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))

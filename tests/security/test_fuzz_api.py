"""Schemathesis generates requests from the OpenAPI spec of the server: no input may cause a 5xx."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from mindsearch import MindSearch, Settings
from mindsearch.api import create_app
from mindsearch.testing import MemoryEngine, ScriptedModel, doc_hit, kind_of, plan_json

EXAMPLES_PER_OPERATION = 180
SEEN: dict[str, int] = {}


def reply(request: Any) -> str:
    kind = kind_of(request)
    if kind == "plan":
        return plan_json(("q1", "Who directed Jaws?", []))
    if kind == "queries":
        return '{"queries": ["jaws"]}'
    return "Jaws was directed by Steven Spielberg [1]."


DATA = Path(tempfile.mkdtemp(prefix="mindsearch-fuzz-"))
CONFIG = Settings(
    data_dir=DATA,
    max_question_chars=500,
    max_body_bytes=8192,
    max_concurrent_runs=64,
    allowed_hosts=["testserver"],  # the host name of the in-process client
)
ENGINE = MindSearch(
    CONFIG,
    model=ScriptedModel(reply),
    engines=[MemoryEngine([doc_hit("Jaws", "Jaws is a 1975 film directed by Steven Spielberg.")])],
)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(CONFIG, engine=ENGINE))


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case: Any) -> None:
    response = case.call()
    key = f"{case.method} {case.path}"
    SEEN[key] = SEEN.get(key, 0) + 1
    assert response.status_code < 500, f"{key} -> {response.status_code}: {response.text[:500]}"


def test_at_least_500_cases_ran() -> None:
    """Runs after the fuzz test in this file (pytest keeps file order) and checks it did real work."""
    assert sum(SEEN.values()) >= 500, SEEN
    assert {"POST /v1/search", "POST /solve", "POST /v1/chat/completions"} <= set(SEEN)
    if os.environ.get("FUZZ_REPORT"):  # benchmarks/fuzz.py reads the counts from here
        Path(os.environ["FUZZ_REPORT"]).write_text(json.dumps(SEEN))


def test_with_a_key_every_route_but_health_refuses_missing_or_wrong_tokens() -> None:
    from starlette.testclient import TestClient

    keyed = CONFIG.with_changes(api_key="k3y")
    with TestClient(create_app(keyed, engine=ENGINE)) as client:
        spec = client.get("/openapi.json", headers={"Authorization": "Bearer k3y"}).json()
        routes = [(method.upper(), path) for path, item in spec["paths"].items() for method in item]
        routes += [("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/no-such-route")]
        assert len(routes) >= 8
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "k3y"}):
                response = client.request(method, path, headers=headers, json={"question": "q"})
                expected = 200 if path == "/health" else 401
                assert response.status_code == expected, (method, path, headers, response.status_code)

"""deploy/compose.yaml and docs/deploy.md say what the code does: every MINDSEARCH_* name they use is a
setting, and the commands they run exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mindsearch.cli import build_parser
from mindsearch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {f"MINDSEARCH_{name.upper()}" for name in Settings.model_fields}


def test_the_compose_file_runs_every_tier_with_real_settings() -> None:
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"redis", "api", "worker", "proxy", "searxng", "lmdeploy"} <= set(services)
    assert "--appendonly" in services["redis"]["command"], "AOF: a Redis restart loses no session"
    assert services["api"]["command"][:2] == ["mindsearch", "serve"]
    assert services["worker"]["command"] == ["mindsearch", "worker"]
    names = set(re.findall(r"MINDSEARCH_[A-Z_]+", (REPO / "deploy" / "compose.yaml").read_text()))
    assert names and names <= SETTINGS, names - SETTINGS
    assert "MINDSEARCH_REDIS_URL" in services["worker"]["environment"]


def test_the_deploy_doc_names_only_real_settings_and_commands() -> None:
    text = (REPO / "docs" / "deploy.md").read_text()
    names = set(re.findall(r"MINDSEARCH_[A-Z_]+", text))
    assert names <= SETTINGS, names - SETTINGS
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert {"serve", "worker", "keys"} <= commands
    for used in re.findall(r"`mindsearch (\w+)", text):
        assert used in commands, used
    readme = (REPO / "README.md").read_text()
    assert "## Scale out" in readme and "docs/deploy.md" in readme

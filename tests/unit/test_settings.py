from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mindsearch import Settings
from mindsearch.settings import describe_settings, settings_table


def test_defaults_work_offline() -> None:
    s = Settings()
    assert s.llm == "llamacpp" and s.engines == ["local"] and s.resolved_prompt_style == "base"


def test_environment_toml_and_arguments_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mindsearch.toml").write_text(
        'max_nodes = 5\nmax_rounds = 2\nengines = ["local", "duckduckgo"]\n'
    )
    assert Settings().max_nodes == 5 and Settings().engines == ["local", "duckduckgo"]
    monkeypatch.setenv("MINDSEARCH_MAX_NODES", "6")
    monkeypatch.setenv("MINDSEARCH_ENGINES", "local,searxng")
    monkeypatch.setenv("MINDSEARCH_SEARXNG_URL", "http://127.0.0.1:1")
    assert Settings().max_nodes == 6 and Settings().max_rounds == 2
    assert Settings().engines == ["local", "searxng"]
    assert Settings(max_nodes=7).max_nodes == 7


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('llm = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    monkeypatch.setenv("MINDSEARCH_CONFIG", str(config))
    s = Settings()
    assert s.llm == "openai" and s.resolved_prompt_style == "chat"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engines": ["bing"]}, "unknown engine"),
        ({"engines": ["brave"]}, "MINDSEARCH_BRAVE_API_KEY"),
        ({"engines": ["searxng"]}, "MINDSEARCH_SEARXNG_URL"),
        ({"max_nodes": 0}, "greater than or equal to 1"),
        ({"llm": "gpt"}, "llamacpp"),
        ({"unknown_setting": 1}, "Extra inputs"),
    ],
)
def test_bad_settings_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_every_setting_is_described_with_its_environment_name() -> None:
    rows = describe_settings()
    names = {row[0] for row in rows}
    assert {"MINDSEARCH_LLM", "MINDSEARCH_MAX_NODES", "MINDSEARCH_ENGINES"} <= names
    assert len(rows) == len(Settings.model_fields)


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert settings_table() in readme, "regenerate the README table: python -m mindsearch.settings"

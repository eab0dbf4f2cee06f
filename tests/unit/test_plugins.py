"""The plugin registry: entry points, the built-ins declared like any plugin, names in one place, broken
plugins named; and the scope (time range, search language) each engine is given or says it cannot honour."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import tomllib
from pydantic import ValidationError

from mindsearch import MindSearch, Settings, plugins
from mindsearch.options import RunOptions, run_options
from mindsearch.plugins import BUILTIN_ENGINES, BUILTIN_MODELS, ENGINES, PluginError, Registry
from mindsearch.search.base import SearchEngine, SearchHit, SearchScope, is_scope_note, scope_for, scope_note
from mindsearch.search.brave import search_lang
from mindsearch.search.duckduckgo import region_for
from mindsearch.search.searxng import searxng_language
from mindsearch.search.serper import google_language
from mindsearch.settings import language_code
from mindsearch.testing import MemoryEngine, ScriptedModel, doc_hit, kind_of

ROOT = Path(__file__).resolve().parents[2]


class Fixed(SearchEngine):
    name = "fixed"
    is_web = False

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        return [doc_hit("Zephyr Lighthouse", "The Zephyr Lighthouse was built in 1887.", engine=self.name)]


def fixed_factory(settings: Settings) -> SearchEngine:
    return Fixed()


def not_an_engine(settings: Settings) -> object:
    return "a string"


def rediscover() -> None:
    """Find the plugins again, keeping the test doubles ``block_real_models`` put in for the backends."""
    doubles = dict(plugins.BACKENDS)
    plugins.refresh()
    for name, factory in doubles.items():
        plugins.BACKENDS[name] = factory


@pytest.fixture
def install() -> Iterator[Callable[..., None]]:
    """``install(entry, ...)``: entry points as installed packages would declare them."""
    found: list[EntryPoint] = []
    real = plugins._installed

    def add(*entries: EntryPoint) -> None:
        found.extend(entries)
        rediscover()

    plugins._installed = lambda group: [e for e in found if e.group == group]  # type: ignore[assignment]
    yield add
    plugins._installed = real  # type: ignore[assignment]
    rediscover()


def entry(name: str, value: str, group: str = plugins.ENGINE_GROUP) -> EntryPoint:
    return EntryPoint(name, value, group)


def test_the_builtins_are_declared_in_pyproject_as_entry_points() -> None:
    """mindsearch's own engines and backends are plugins like anyone's: the same table in both places."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["mindsearch.engines"] == BUILTIN_ENGINES
    assert project["entry-points"]["mindsearch.models"] == BUILTIN_MODELS
    for value in [*BUILTIN_ENGINES.values(), *BUILTIN_MODELS.values()]:
        assert callable(EntryPoint("x", value, "g").load())


def test_a_plugin_is_found_listed_after_the_builtins_and_used_by_name(
    install: Callable[..., None], settings: Settings
) -> None:
    install(entry("fixed", f"{__name__}:fixed_factory"))
    assert ENGINES.names() == [*BUILTIN_ENGINES, "fixed"]
    assert ENGINES.plugin("fixed") is not None and not ENGINES.plugin("fixed").builtin  # type: ignore[union-attr]
    assert Settings(engines=["fixed", "local"]).engines == ["fixed", "local"]
    assert RunOptions(engines=["fixed"]).engines == ["fixed"]
    engine = MindSearch(settings.with_changes(engines=["fixed"])).engines[0]
    assert isinstance(engine, Fixed)


def test_an_unknown_engine_or_backend_is_one_error_naming_the_known_ones(
    install: Callable[..., None],
) -> None:
    install(entry("fixed", f"{__name__}:fixed_factory"))
    known = "choose from local, duckduckgo, searxng, brave, serper, tavily, fixed"
    with pytest.raises(ValidationError) as caught:
        Settings(engines=["local", "bing"])
    assert [e["msg"] for e in caught.value.errors()] == [f"Value error, unknown engine(s) ['bing']; {known}"]
    with pytest.raises(Exception, match=r"engines: unknown engine\(s\) \['bing'\]; " + known):
        run_options({"engines": ["bing"]})
    with pytest.raises(
        ValidationError, match="unknown LLM backend 'gpt'; choose from llamacpp, openai, lmdeploy"
    ):
        Settings(llm="gpt")


def test_a_broken_plugin_is_never_imported_until_used_and_then_named(
    install: Callable[..., None], settings: Settings
) -> None:
    """Before, a plugin system that imports every plugin at startup would stop every command when one
    plugin's dependency is missing; here only the commands that use it fail, with its name."""
    install(entry("broken", "mindsearch_no_such_module_xyz:factory"))
    assert "broken" in ENGINES.names()  # listed from metadata alone
    assert Settings(engines=["local"]).engines == ["local"]
    with pytest.raises(PluginError) as caught:
        plugins.check_plugins("llamacpp", ["local", "broken"])
    message = str(caught.value)
    assert "engine plugin 'broken' (mindsearch_no_such_module_xyz:factory" in message
    assert "ModuleNotFoundError" in message and "mindsearch_no_such_module_xyz" in message
    with pytest.raises(PluginError, match="plugin 'broken'"):
        MindSearch(settings.with_changes(engines=["broken"])).engines_for(
            settings.with_changes(engines=["broken"])
        )


def test_a_factory_that_makes_the_wrong_thing_is_named(
    install: Callable[..., None], settings: Settings
) -> None:
    install(entry("odd", f"{__name__}:not_an_engine"))
    with pytest.raises(PluginError, match=r"engine plugin 'odd' .* made a str, not a SearchEngine"):
        ENGINES["odd"](settings)


def test_a_plugin_cannot_take_a_builtins_name_nor_a_bad_name(
    install: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mindsearch.plugins"):
        install(
            entry("local", f"{__name__}:fixed_factory"),
            entry("local", BUILTIN_ENGINES["local"]),  # mindsearch's own declaration: no warning
            entry("Bad,Name", f"{__name__}:fixed_factory"),
        )
        names = ENGINES.names()
    assert names == list(BUILTIN_ENGINES)
    assert ENGINES.plugin("local").builtin  # type: ignore[union-attr]
    assert (
        len(ENGINES.ignored) == 2 and "the name is taken by mindsearch.plugins:_local" in ENGINES.ignored[0]
    )
    assert len(caplog.records) == 2


def test_a_model_backend_plugin_is_chosen_with_llm(install: Callable[..., None], settings: Settings) -> None:
    install(entry("scripted", "mindsearch.testing:ScriptedModel", plugins.MODEL_GROUP))
    assert plugins.BACKENDS.names() == ["llamacpp", "openai", "lmdeploy", "scripted"]
    assert Settings(llm="scripted").resolved_prompt_style == "chat"


def test_test_doubles_can_still_replace_factories() -> None:
    """``block_real_models`` (every test runs under it) replaced each backend; the registry is a mapping."""
    registry: Registry[SearchEngine] = Registry(
        "engine", "mindsearch.test-group", {"fixed": f"{__name__}:fixed_factory"}, SearchEngine
    )
    saved = dict(registry)
    registry["fixed"] = lambda settings: Fixed()
    assert registry.names() == ["fixed"] and registry["fixed"] is not saved["fixed"]
    registry.clear()
    registry.update(saved)
    assert registry["fixed"] is saved["fixed"]


def test_the_options_schema_lists_the_registered_engines(install: Callable[..., None]) -> None:
    install(entry("fixed", f"{__name__}:fixed_factory"))
    schema = RunOptions.model_json_schema()["properties"]["engines"]
    array = next(v for v in schema["anyOf"] if v.get("type") == "array")
    assert array["items"]["enum"] == [*BUILTIN_ENGINES, "fixed"]


# --- time range and search language -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("auto", "auto"),
        ("EN", "en"),
        ("zh_tw", "zh-TW"),
        ("zh-hant", "zh-Hant"),
        ("pt-br", "pt-BR"),
        ("es-419", "es-419"),
    ],
)
def test_a_search_language_is_auto_or_a_code_in_its_usual_case(given: str, kept: str) -> None:
    assert language_code(given) == kept
    assert Settings(search_language=given).search_language == kept
    assert RunOptions(search_language=given).search_language == kept


@pytest.mark.parametrize("bad", ["english", "e", "zh-TW-x-private!", "en us", ""])
def test_a_search_language_that_is_not_a_code_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="is not a language code"):
        Settings(search_language=bad)


def test_time_range_is_a_setting_and_a_run_option() -> None:
    assert Settings().time_range == "any" and Settings(time_range="week").time_range == "week"
    assert RunOptions(time_range="day").apply(Settings()).time_range == "day"
    with pytest.raises(ValidationError):
        Settings(time_range="fortnight")  # type: ignore[arg-type]


class Modern(SearchEngine):
    name = "modern"
    time_ranges = frozenset({"week", "month"})
    takes_language = True

    async def search(self, query: str, *, limit: int, **scope: Any) -> list[SearchHit]:
        return []


def test_an_engine_is_given_only_what_it_declares() -> None:
    old, modern = MemoryEngine([]), Modern()
    scope = SearchScope(time_range="day", language="de", language_chosen=True)
    assert scope.arguments(old) == {} and scope.key(old) == ""
    assert scope.arguments(modern) == {"language": "de"}
    assert scope.unsupported(modern) == ["limit results to the past day"]
    assert scope.unsupported(old) == ["limit results to the past day", "limit results to the language de"]
    guessed = scope_for("沙丘的作者是谁？", time_range="week", search_language="auto")
    assert guessed == SearchScope(time_range="week", language="zh", language_chosen=False)
    assert guessed.unsupported(old) == ["limit results to the past week"], (
        "a guessed language is not reported"
    )
    assert scope_for("Who wrote Dune?", time_range="any", search_language="auto").arguments(modern) == {
        "language": "en"
    }


def test_the_note_is_recognised_exactly() -> None:
    note = scope_note("local", ["limit results to the past week", "limit results to the language zh-TW"])
    assert note == (
        "local: cannot limit results to the past week or limit results to the language zh-TW; "
        "its results are used unfiltered"
    )
    assert is_scope_note(note)
    assert not is_scope_note(note + " http://user:pw@h.example/")
    assert not is_scope_note("local: no network")


def test_each_engines_language_codes() -> None:
    assert [region_for(c) for c in ("en", "en-GB", "zh", "zh-TW", "zh-Hant", "pt-BR", "de-CH", "xx")] == [
        "us-en", "uk-en", "cn-zh", "tw-tzh", "tw-tzh", "br-pt", "ch-de", None
    ]  # fmt: skip
    assert [search_lang(c) for c in ("en", "en-GB", "ja", "zh", "zh-HK", "pt", "pt-BR", "xx")] == [
        "en", "en-gb", "jp", "zh-hans", "zh-hant", "pt-pt", "pt-br", None
    ]  # fmt: skip
    assert [google_language(c) for c in ("en", "zh", "zh-TW", "pt-BR", "he", "de-AT")] == [
        ("en", None), ("zh-cn", None), ("zh-tw", "tw"), ("pt-br", "br"), ("iw", None), ("de", "at")
    ]  # fmt: skip
    assert [searxng_language(c) for c in ("en", "zh-Hant", "zh-TW", "es-419", "de-AT")] == [
        "en", "zh-TW", "zh-TW", "es", "de-AT"
    ]  # fmt: skip


async def test_an_engine_written_before_the_scope_is_called_as_before_and_the_run_says_so_once(
    settings: Settings,
) -> None:
    """A plugin with ``search(query, *, limit)`` gets no keyword it does not take (no TypeError), and the
    run tells, once, that its results are not limited to the week asked for."""
    docs = [doc_hit("Dune", "Dune is a 1965 novel by Frank Herbert.")]
    engine = MemoryEngine(docs)

    def reply(request: Any) -> Any:
        if kind_of(request) == "queries":
            return '{"queries": ["dune author", "dune novel"]}'
        return "Dune was written by Frank Herbert [1]."

    async with MindSearch(settings, model=ScriptedModel(reply), engines=[engine]) as search:
        events = [
            e
            async for e in search.stream(
                "Who wrote Dune?", options={"depth": "quick", "time_range": "week", "search_language": "de"}
            )
        ]
    notes = [e for e in events if e.type == "error"]
    assert [(n.stage, n.message, n.fatal) for n in notes] == [
        (
            "search",
            "memory: cannot limit results to the past week or limit results to the language de; "
            "its results are used unfiltered",
            False,
        )
    ]
    assert len(engine.queries) >= 2 and events[-1].ok and "Frank Herbert" in events[-1].answer

"""mindsearch: a self-hosted AI search engine that plans, searches concurrently and answers with citations.

Everything a user of the library needs is importable from here (``__all__``); modules whose names start
with ``_`` are internal and may change in any release. The public submodules are ``mindsearch.events``
(the event types), ``mindsearch.llm`` (the model interface and backends), ``mindsearch.search`` (the
engine interface and engines), ``mindsearch.web`` (the fetcher interface), ``mindsearch.citations``,
``mindsearch.plugins`` (the registries), ``mindsearch.testing`` (test doubles: a scripted model, an
in-memory engine, loopback servers), ``mindsearch.integrations`` and ``mindsearch.api`` (the ASGI app).
"""

from . import events
from ._errors import MindSearchError, MissingExtra
from ._graph import PlanError, SubQuestion
from ._run import Answer, MindSearch
from .events import SCHEMA_VERSION, Event, parse_event
from .llm.base import ChatModel, ContextLengthError, LLMError, Message, ModelRequest, ReplyTruncated
from .options import Depth, OptionsError, RunOptions
from .plugins import PluginError
from .search.base import SearchEngine, SearchError, SearchHit
from .settings import Settings
from .state import RunState
from .web.fetch import BlockedURL, FetchedPage, Fetcher, FetchError

__all__ = [
    "SCHEMA_VERSION",
    "Answer",
    "BlockedURL",
    "ChatModel",
    "ContextLengthError",
    "Depth",
    "Event",
    "FetchError",
    "FetchedPage",
    "Fetcher",
    "LLMError",
    "Message",
    "MindSearch",
    "MindSearchError",
    "MissingExtra",
    "ModelRequest",
    "OptionsError",
    "PlanError",
    "PluginError",
    "ReplyTruncated",
    "RunOptions",
    "RunState",
    "SearchEngine",
    "SearchError",
    "SearchHit",
    "Settings",
    "SubQuestion",
    "events",
    "parse_event",
]
__version__ = "0.1.0"

"""mindsearch: a self-hosted AI search engine that plans, searches concurrently and answers with citations."""

from .events import SCHEMA_VERSION, Event, parse_event
from .run import Answer, MindSearch
from .settings import Settings

__all__ = ["SCHEMA_VERSION", "Answer", "Event", "MindSearch", "Settings", "parse_event"]
__version__ = "0.1.0"

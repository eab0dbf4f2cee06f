"""Language models: the ``ChatModel`` interface (subclass it and implement ``_stream``) and the backends."""

from .base import ChatModel, ContextLengthError, LLMError, Message, ModelRequest, ReplyTruncated

__all__ = ["ChatModel", "ContextLengthError", "LLMError", "Message", "ModelRequest", "ReplyTruncated"]

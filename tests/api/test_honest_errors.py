"""A client is told why an answer was withheld, in our words, not a generic failure that hides it; an
error carrying outside text still becomes the stable message."""

from __future__ import annotations

from mindsearch import events as ev
from mindsearch._run import UNSUPPORTED_ANSWER
from mindsearch.api import SEE_LOG, RunRedactor


def test_our_own_reason_for_withholding_an_answer_reaches_the_client() -> None:
    redactor = RunRedactor(["s3cret"], "req1")
    [shown] = redactor.public(ev.Error(stage="answer", message=UNSUPPORTED_ANSWER))
    assert isinstance(shown, ev.Error) and shown.message == UNSUPPORTED_ANSWER


def test_an_upstream_error_in_the_same_stage_is_still_replaced() -> None:
    redactor = RunRedactor(["s3cret"], "req1")
    upstream = "http://10.0.0.5/v1 answered HTTP 401: bad key s3cret"
    [shown] = redactor.public(ev.Error(stage="answer", message=upstream))
    assert isinstance(shown, ev.Error)
    assert shown.message == "the final answer could not be completed" + SEE_LOG
    assert "s3cret" not in shown.message and "10.0.0.5" not in shown.message

"""The one line a failed command prints: the root cause through Dagster's wrappers."""

from __future__ import annotations

import sys

import dagster as dg
from dagster._core.errors import DagsterExecutionStepExecutionError

from pipelines.cli_errors import one_line


def _wrapped(inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as e:
            raise DagsterExecutionStepExecutionError(
                "Error occurred while executing op \"whatif\":", user_exception=e,
                original_exc_info=sys.exc_info(), step_key="whatif", op_name="whatif",
                op_def_name="whatif") from e
    except BaseException as outer:
        return outer


def test_root_cause_and_step_of_a_wrapped_error():
    err = _wrapped(ValueError("no arrivals in baseline window\nsecond line"))
    assert one_line(err, pilot="p1") == "pilot p1: step whatif: no arrivals in baseline window"


def test_a_circular_chain_ends():
    inner = RuntimeError("boom")
    outer = _wrapped(inner)
    inner.__context__ = outer  # the loop Dagster's re-raise can leave behind
    assert one_line(outer) == "boom"


def test_a_failure_that_names_its_pilot_is_not_prefixed_twice():
    err = dg.Failure(description="pilot p1: ingest: secret missing")
    assert one_line(err, pilot="p1") == "pilot p1: ingest: secret missing"


def test_a_check_failure_lists_the_checks_on_the_same_line():
    err = dg.DagsterError("1 blocking asset check failed with ERROR severity:\n"
                          "ingest_log: no_raw_identifiers")
    assert one_line(err) == ("1 blocking asset check failed with ERROR severity: "
                             "ingest_log: no_raw_identifiers")

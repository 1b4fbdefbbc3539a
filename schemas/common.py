"""Shared vocabulary of the canonical tables (TELEMETRY.md)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from pipelines.config import PRIORITIES

STATUSES = ("ok", "timeout", "dropped", "error", "cancelled")
MODEL_CLASSES = ("llm", "vision", "multimodal", "prediction", "other")
# Identifier columns: their values never go into quarantine messages (observer-only).
IDENTIFIER_COLUMNS = frozenset(
    {"request_id", "parent_request_id", "node", "gpu", "job_id", "gpu_ids"}
)
TS = pl.Datetime("us")  # naive, UTC by contract
INT32_MAX = 2**31 - 1
# Longest label/text value stored (pool, node, series, queue, ...): longer ones are junk or
# a payload in the wrong column, quarantined with their length, never cut silently.
MAX_TEXT_CHARS = 256
# A job overlapping the pilot is kept however long it ran, up to this far outside it.
JOB_SPAN_MAX = timedelta(days=366)
# Times checked against the pilot's phases (± a tolerance) at load, per table.
WINDOW_COLUMNS: dict[str, tuple[str, ...]] = {
    "requests": ("arrival_ts",),
    "samples": ("ts",),
    "jobs": ("submit_ts", "start_ts", "end_ts"),
    "arrivals": ("ts",),
}

__all__ = ["IDENTIFIER_COLUMNS", "INT32_MAX", "JOB_SPAN_MAX", "MAX_TEXT_CHARS",
           "MODEL_CLASSES", "PRIORITIES", "STATUSES", "TS", "WINDOW_COLUMNS"]


def both_or_ordered(later: str, earlier: str) -> pl.Expr:
    """Row rule `later >= earlier`, vacuous when either side is missing."""
    return pl.col(later).is_null() | pl.col(earlier).is_null() | (pl.col(later) >= pl.col(earlier))

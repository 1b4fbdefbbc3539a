"""Shared vocabulary of the canonical tables (TELEMETRY.md)."""

from __future__ import annotations

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

__all__ = ["IDENTIFIER_COLUMNS", "INT32_MAX", "MODEL_CLASSES", "PRIORITIES", "STATUSES", "TS"]


def both_or_ordered(later: str, earlier: str) -> pl.Expr:
    """Row rule `later >= earlier`, vacuous when either side is missing."""
    return pl.col(later).is_null() | pl.col(earlier).is_null() | (pl.col(later) >= pl.col(earlier))

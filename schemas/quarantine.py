"""Pandera model of the `quarantine` table: every refused input row and why."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

ROW_RULES: dict[str, tuple[str, str]] = {}


class QuarantineSchema(pa.DataFrameModel):
    pilot: pl.String = pa.Field(nullable=False)
    source_index: pl.Int32 = pa.Field(nullable=False, ge=0)
    source_kind: pl.String = pa.Field(nullable=False)
    target_table: pl.String = pa.Field(nullable=True)
    file: pl.String = pa.Field(nullable=False)
    line: pl.Int64 = pa.Field(nullable=True, ge=1)  # null: the whole file/source failed
    field: pl.String = pa.Field(nullable=True)
    reason: pl.String = pa.Field(nullable=False, str_length={"min_value": 1})
    value: pl.String = pa.Field(nullable=True)

    class Config:
        strict = True

"""Pandera model of the `arrivals` staging table: arrival traces (no status, no latency)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from schemas.common import INT32_MAX, TS

ROW_RULES: dict[str, tuple[str, str]] = {}


class ArrivalsSchema(pa.DataFrameModel):
    ts: TS = pa.Field(nullable=False)
    input_tokens: pl.Int32 = pa.Field(nullable=True, ge=0, le=INT32_MAX)
    output_tokens: pl.Int32 = pa.Field(nullable=True, ge=0, le=INT32_MAX)
    source: pl.String = pa.Field(nullable=False, str_length={"min_value": 1})

    class Config:
        strict = False

"""Pandera model of the canonical `samples` table: every time series in long form."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from schemas.common import TS

ROW_RULES: dict[str, tuple[str, str]] = {}


class SamplesSchema(pa.DataFrameModel):
    ts: TS = pa.Field(nullable=False)
    series: pl.String = pa.Field(nullable=False, str_length={"min_value": 1})
    pool: pl.String = pa.Field(nullable=True)
    node: pl.String = pa.Field(nullable=True)
    gpu: pl.String = pa.Field(nullable=True)
    value: pl.Float64 = pa.Field(nullable=False)
    le: pl.Float64 = pa.Field(nullable=True)  # histogram bucket bound; +Inf is legal

    class Config:
        strict = False

    @pa.check("value")
    def value_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_finite())

    @pa.check("le")
    def le_not_nan(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_null() | pl.col(data.key).is_not_nan())

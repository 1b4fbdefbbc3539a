"""Pandera model of the canonical `requests` table: one row per request attempt."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from schemas.common import INT32_MAX, MODEL_CLASSES, PRIORITIES, STATUSES, TS, both_or_ordered

# Row rules: check name -> (field blamed, reason). The field is the later timestamp.
ROW_RULES: dict[str, tuple[str, str]] = {
    "dispatch_after_arrival": ("dispatch_ts", "dispatch_ts is before arrival_ts"),
    "start_after_arrival": ("start_ts", "start_ts is before arrival_ts"),
    "first_token_after_start": ("first_token_ts", "first_token_ts is before start_ts"),
    "end_after_start": ("end_ts", "end_ts is before start_ts"),
    "end_after_arrival": ("end_ts", "end_ts is before arrival_ts"),
    "ok_has_end": ("end_ts", "status ok requires end_ts"),
    "retry_has_parent": ("parent_request_id", "attempt > 0 requires parent_request_id"),
    "parent_not_self": ("parent_request_id", "parent_request_id equals request_id"),
}


class RequestsSchema(pa.DataFrameModel):
    request_id: pl.String = pa.Field(nullable=False)
    parent_request_id: pl.String = pa.Field(nullable=True)
    attempt: pl.Int32 = pa.Field(nullable=False, ge=0)
    pool: pl.String = pa.Field(nullable=False)
    node: pl.String = pa.Field(nullable=True)
    gpu: pl.String = pa.Field(nullable=True)
    model_class: pl.String = pa.Field(nullable=False, isin=MODEL_CLASSES)
    priority: pl.String = pa.Field(nullable=False, isin=PRIORITIES)
    arrival_ts: TS = pa.Field(nullable=False)
    dispatch_ts: TS = pa.Field(nullable=True)
    start_ts: TS = pa.Field(nullable=True)
    first_token_ts: TS = pa.Field(nullable=True)
    end_ts: TS = pa.Field(nullable=True)
    status: pl.String = pa.Field(nullable=False, isin=STATUSES)
    input_tokens: pl.Int32 = pa.Field(nullable=True, ge=0, le=INT32_MAX)
    output_tokens: pl.Int32 = pa.Field(nullable=True, ge=0, le=INT32_MAX)

    class Config:
        strict = False  # extra bookkeeping columns (e.g. the source line) pass through

    @pa.dataframe_check
    def dispatch_after_arrival(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(both_or_ordered("dispatch_ts", "arrival_ts"))

    @pa.dataframe_check
    def start_after_arrival(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(both_or_ordered("start_ts", "arrival_ts"))

    @pa.dataframe_check
    def first_token_after_start(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(both_or_ordered("first_token_ts", "start_ts"))

    @pa.dataframe_check
    def end_after_start(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(both_or_ordered("end_ts", "start_ts"))

    @pa.dataframe_check
    def end_after_arrival(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(both_or_ordered("end_ts", "arrival_ts"))

    @pa.dataframe_check
    def ok_has_end(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("status") != "ok") | pl.col("end_ts").is_not_null())

    @pa.dataframe_check
    def retry_has_parent(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("attempt") == 0) | pl.col("parent_request_id").is_not_null()
        )

    @pa.dataframe_check
    def parent_not_self(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("parent_request_id") != pl.col("request_id")).fill_null(True)
        )

"""Pandera model of the canonical `jobs` table: scheduler jobs sharing the GPUs."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from schemas.common import TS, both_or_ordered

ROW_RULES: dict[str, tuple[str, str]] = {
    "eligible_after_submit": ("eligible_ts", "eligible_ts is before submit_ts"),
    "start_after_submit": ("start_ts", "start_ts is before submit_ts"),
    "end_after_start": ("end_ts", "end_ts is before start_ts"),
}


class JobsSchema(pa.DataFrameModel):
    job_id: pl.String = pa.Field(nullable=False)
    kind: pl.String = pa.Field(nullable=False)
    queue: pl.String = pa.Field(nullable=True)
    priority: pl.Float64 = pa.Field(nullable=True)  # as the scheduler says; higher = more urgent
    submit_ts: TS = pa.Field(nullable=True)
    eligible_ts: TS = pa.Field(nullable=True)
    start_ts: TS = pa.Field(nullable=True)
    end_ts: TS = pa.Field(nullable=True)
    node: pl.String = pa.Field(nullable=True)
    pool: pl.String = pa.Field(nullable=True)
    gpus: pl.Int32 = pa.Field(nullable=True, ge=0)
    gpu_ids: pl.List(pl.String) = pa.Field(nullable=True)
    state: pl.String = pa.Field(nullable=False)

    class Config:
        strict = False

    @pa.check("priority")
    def priority_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_finite())

    @pa.dataframe_check
    def eligible_after_submit(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(both_or_ordered("eligible_ts", "submit_ts"))

    @pa.dataframe_check
    def start_after_submit(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(both_or_ordered("start_ts", "submit_ts"))

    @pa.dataframe_check
    def end_after_start(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(both_or_ordered("end_ts", "start_ts"))

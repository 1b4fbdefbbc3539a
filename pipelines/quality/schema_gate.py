"""Pandera gate: a canonical table's rows for one pilot, as stored, still fit its model."""

from __future__ import annotations

import duckdb
import polars as pl

from schemas import table_columns, validate_frame

MAX_SHOWN = 10


def schema_gate(con: duckdb.DuckDBPyConnection, table: str, pilot: str
                ) -> tuple[bool, dict[str, object]]:
    cols = ", ".join(table_columns(table))
    df = con.execute(f"SELECT {cols} FROM {table} WHERE pilot = ?", [pilot]).pl()
    df = df.with_columns(
        pl.col(c).cast(dtype) for c, (dtype, _) in table_columns(table).items()
    )
    _, failures = validate_frame(table, df)
    summary = (
        failures.group_by("field", "reason").len().sort("len", descending=True).head(MAX_SHOWN)
    )
    return failures.height == 0, {
        "rows": df.height,
        "failures": failures.height,
        "top_failures": [f"{r['field']}: {r['reason']} ({r['len']})" for r in summary.to_dicts()],
    }

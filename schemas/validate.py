"""Row-level validation of canonical frames: good rows continue, bad rows go to quarantine."""

from __future__ import annotations

from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from schemas import arrivals, jobs, quarantine, requests, samples
from schemas.common import IDENTIFIER_COLUMNS

MODELS: dict[str, type[pa.DataFrameModel]] = {
    "requests": requests.RequestsSchema,
    "jobs": jobs.JobsSchema,
    "samples": samples.SamplesSchema,
    "quarantine": quarantine.QuarantineSchema,
    "arrivals": arrivals.ArrivalsSchema,
}
ROW_RULES: dict[str, dict[str, tuple[str, str]]] = {
    "requests": requests.ROW_RULES,
    "jobs": jobs.ROW_RULES,
    "samples": samples.ROW_RULES,
    "quarantine": quarantine.ROW_RULES,
    "arrivals": arrivals.ROW_RULES,
}
COLUMN_RULES = {  # custom column checks -> reason
    "priority_finite": "expected a finite number",
    "value_finite": "expected a finite number",
    "le_not_nan": "expected a number or +Inf",
}
FAILURE_SCHEMA = {"row": pl.Int64, "field": pl.String, "reason": pl.String, "value": pl.String}


class FrameSchemaError(ValueError):
    """The frame as a whole does not fit the table (missing column, wrong dtype)."""


def table_columns(table: str) -> dict[str, tuple[pl.DataType, bool]]:
    """Column name -> (polars dtype, nullable), in table order."""
    schema = MODELS[table].to_schema()
    return {n: (c.dtype.type, bool(c.nullable)) for n, c in schema.columns.items()}


def validate_frame(table: str, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate `df` against the table's model.

    Returns (good rows, failures) where failures has one row per (row, field) problem:
    row (0-based index into `df`), field, reason, value (null for identifiers).
    Raises FrameSchemaError when the frame itself is wrong rather than some rows.
    """
    model = MODELS[table]
    try:
        model.validate(df, lazy=True)
    except SchemaErrors as e:
        failures = _failures(table, df, e.failure_cases)
        bad = failures.get_column("row").unique()
        good = df.with_row_index("__row").filter(~pl.col("__row").is_in(bad.implode()))
        return good.drop("__row"), failures
    return df, pl.DataFrame(schema=FAILURE_SCHEMA)


def _failures(table: str, df: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    whole = cases.filter(pl.col("index").is_null())
    if whole.height:
        msgs = sorted(
            {f"{r['column']}: {r['check']} ({r['failure_case']})" for r in whole.to_dicts()}
        )
        raise FrameSchemaError(f"{table}: " + "; ".join(msgs))
    columns = model_checks(table)
    rules = ROW_RULES[table]
    rows: dict[str, list[pl.Series]] = {k: [] for k in FAILURE_SCHEMA}
    # One entry per distinct check failure; the number of failing rows is small next to the
    # frame, so a loop over failure cases (not over rows) is fine.
    # NaN counts as null to pandera; the finite checks report it with a better reason.
    cases = cases.filter(
        (pl.col("check") != "not_nullable")
        | pl.col("failure_case").is_null()
        | (pl.col("failure_case") == "null")
    )
    for (col, check, num), grp in cases.group_by(
        ["column", "check", "check_number"], maintain_order=True
    ):
        idx = grp.get_column("index").cast(pl.Int64)
        if check in rules:  # dataframe-level row rule: blame its field, show that field's value
            field, reason = rules[check]
            vals = df.get_column(field).gather(idx).cast(pl.String)
        else:
            field = str(col)
            reason = _column_reason(str(check), columns.get(field, []), num)
            vals = grp.get_column("failure_case").cast(pl.String)
        if field in IDENTIFIER_COLUMNS or check == "not_nullable":
            vals = pl.repeat(None, len(idx), dtype=pl.String, eager=True)
        rows["row"].append(idx)
        rows["field"].append(pl.repeat(field, len(idx), dtype=pl.String, eager=True))
        rows["reason"].append(pl.repeat(reason, len(idx), dtype=pl.String, eager=True))
        rows["value"].append(vals)
    out = pl.DataFrame(
        {
            k: pl.concat(rows[k]) if rows[k] else pl.Series(k, [], dtype=t)
            for k, t in FAILURE_SCHEMA.items()
        }
    )
    return out.select(pl.col(k).cast(t) for k, t in FAILURE_SCHEMA.items()).sort("row", "field")


def model_checks(table: str) -> dict[str, list[Any]]:
    schema = MODELS[table].to_schema()
    return {n: list(c.checks) for n, c in schema.columns.items()}


def _column_reason(check: str, checks: list[Any], num: Any) -> str:
    if check == "not_nullable":
        return "missing required value"
    if check in COLUMN_RULES:
        return COLUMN_RULES[check]
    stats: dict[str, Any] = {}
    if num is not None and 0 <= int(num) < len(checks):
        stats = checks[int(num)].statistics or {}
    if check.startswith("isin"):
        return "expected one of " + ", ".join(map(str, stats.get("allowed_values", [])))
    if check.startswith("greater_than_or_equal_to"):
        return f"expected a value >= {stats.get('min_value')}"
    if check.startswith("less_than_or_equal_to"):
        return f"expected a value <= {stats.get('max_value')}"
    if check.startswith("str_length"):
        return "expected a non-empty string"
    return f"failed check {check}"

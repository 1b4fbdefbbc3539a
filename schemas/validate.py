"""Row-level validation of canonical frames: good rows continue, bad rows go to quarantine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from schemas import arrivals, jobs, quarantine, requests, samples
from schemas.common import IDENTIFIER_COLUMNS, JOB_SPAN_MAX, MAX_TEXT_CHARS, WINDOW_COLUMNS

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


def validate_frame(
    table: str, df: pl.DataFrame, window: tuple[datetime, datetime] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate `df` against the table's model.

    Returns (good rows, failures) where failures has one row per (row, field) problem:
    row (0-based index into `df`), field, reason, value (null for identifiers).
    Beyond the model: a text value longer than MAX_TEXT_CHARS is refused with its length, and
    with `window` (naive UTC [first, last], tolerance included) a WINDOW_COLUMNS time outside
    it is refused too.
    Raises FrameSchemaError when the frame itself is wrong rather than some rows.
    """
    model = MODELS[table]
    parts = [_long_texts(table, df), _outside(table, df, window)]
    try:
        model.validate(df, lazy=True)
    except SchemaErrors as e:
        parts.append(_failures(table, df, e.failure_cases))
    failures = pl.concat(parts).sort("row", "field")
    if not failures.height:
        return df, failures
    bad = failures.get_column("row").unique()
    good = df.with_row_index("__row").filter(~pl.col("__row").is_in(bad.implode()))
    return good.drop("__row"), failures


def _long_texts(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """One failure per text value (or list element) longer than MAX_TEXT_CHARS."""
    found = [pl.DataFrame(schema=FAILURE_SCHEMA)]
    for col in table_columns(table):
        dtype = df.schema.get(col)
        # a character is at least one UTF-8 byte: count characters only where the byte length
        # (read from the offsets, no decoding) is over the limit (~0.4 CPU s per 10 M rows)
        if dtype == pl.String:
            nbytes, length = pl.col(col).str.len_bytes(), pl.col(col).str.len_chars()
        elif dtype == pl.List(pl.String):
            nbytes = pl.col(col).list.eval(pl.element().str.len_bytes()).list.max()
            length = pl.col(col).list.eval(pl.element().str.len_chars()).list.max()
        else:
            continue
        found.append(
            df.select(col).with_row_index("row")
            .filter(nbytes > MAX_TEXT_CHARS)
            .select("row", length.alias("n"))
            .filter(pl.col("n") > MAX_TEXT_CHARS)
            .select(
                pl.col("row").cast(pl.Int64),
                pl.lit(col, dtype=pl.String).alias("field"),
                pl.format(f"text longer than {MAX_TEXT_CHARS} characters ({{}} characters)",
                          pl.col("n")).alias("reason"),
                pl.lit(None, dtype=pl.String).alias("value"),
            )
        )
    return pl.concat(found)


def _bounds(table: str, col: str, lo: datetime, hi: datetime) -> tuple[datetime, datetime]:
    """Accepted range of one time column. A job may be submitted before the pilot and run
    on after it (a serving replica, a long training run): it is kept while it overlaps the
    window, and only a time over JOB_SPAN_MAX away from it (1970, 2100) is refused."""
    if table != "jobs":
        return lo, hi
    if col == "end_ts":
        return lo, hi + JOB_SPAN_MAX
    return lo - JOB_SPAN_MAX, hi


def _outside(table: str, df: pl.DataFrame, window: tuple[datetime, datetime] | None
             ) -> pl.DataFrame:
    """One failure per WINDOW_COLUMNS time outside `window` (the pilot's phases ± tolerance;
    for jobs, see `_bounds`)."""
    found = [pl.DataFrame(schema=FAILURE_SCHEMA)]
    if window is None:
        return found[0]
    for col in WINDOW_COLUMNS.get(table, ()):
        if not isinstance(df.schema.get(col), pl.Datetime):
            continue
        lo, hi = _bounds(table, col, *window)
        reason = (f"timestamp outside the pilot's phases ± tolerance (expected "
                  f"{lo:%Y-%m-%dT%H:%M:%SZ} to {hi:%Y-%m-%dT%H:%M:%SZ})")
        found.append(
            df.select(pl.col(col)).with_row_index("row")
            .filter((pl.col(col) < lo) | (pl.col(col) > hi))
            .select(
                pl.col("row").cast(pl.Int64),
                pl.lit(col, dtype=pl.String).alias("field"),
                pl.lit(reason, dtype=pl.String).alias("reason"),
                pl.col(col).dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").alias("value"),
            )
        )
    return pl.concat(found)


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

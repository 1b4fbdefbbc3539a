"""Adapter for `canonical` sources: Parquet, CSV or JSON Lines already in a table's shape.

Every value is coerced to the table's dtype with vectorized polars expressions; a value that
does not parse sends its row to quarantine (file, line, field, reason, value) and the rest of
the file goes on. A CSV record holding a byte that is not UTF-8 is quarantined alone ("not
valid UTF-8", with its column). A file that cannot be read as a whole (its header included),
or lacks a required column, raises SourceError.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config import Source
from pipelines.ingest.base import (
    LINE,
    MAX_VALUE_CHARS,
    REJECT_SCHEMA,
    AdapterContext,
    Parsed,
    SourceError,
    empty_rejects,
)
from pipelines.ingest.csv_blocks import csv_blocks
from schemas import table_columns
from schemas.common import IDENTIFIER_COLUMNS, INT32_MAX

PARQUET_EXT = (".parquet", ".pq")
CSV_EXT = (".csv",)
JSONL_EXT = (".jsonl", ".ndjson")
# Marker columns of records refused while reading (carried to to_table, never stored):
# __ragged holds the reason, __ragged_field the field when known.
RAGGED, RAGGED_FIELD = "__ragged", "__ragged_field"
MARKERS = (RAGGED, RAGGED_FIELD)
UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)
NOT_UTF8 = "not valid UTF-8"

EXPECTED = {  # reason per target dtype family when a value does not parse
    "ts": "expected an ISO-8601 timestamp",
    "int": "expected an integer",
    "int32": "expected a 32-bit integer",
    "float": "expected a number",
}


def read_canonical_source(
    path: Path, source: Source, ctx: AdapterContext | None = None
) -> Iterator[Parsed]:
    """ADAPTERS entry point: Parquet and CSV stream in chunks of about `ctx.chunk_rows` rows,
    so memory is bounded by the chunk, whatever the file size."""
    assert source.table is not None  # guaranteed by config validation
    chunk_rows = (ctx or AdapterContext()).chunk_rows
    ext = path.suffix.lower()
    if ext in PARQUET_EXT or ext in CSV_EXT:
        for raw in raw_chunks(path, chunk_rows):
            yield to_table(raw, empty_rejects(), source.table)
    else:
        yield read_canonical(path, source.table)


def read_canonical(path: Path, table: str) -> Parsed:
    """Read one canonical file for `table` (format by extension) as a single chunk."""
    ext = path.suffix.lower()
    if ext in PARQUET_EXT:
        raw, rejects = _read_parquet(path), empty_rejects()
    elif ext in CSV_EXT:
        raw, rejects = _read_csv(path), empty_rejects()
    elif ext in JSONL_EXT:
        raw, rejects = _read_jsonl(path)
    else:
        raise SourceError(
            f"unsupported file extension {ext or '(none)'!r}; expected "
            + ", ".join(PARQUET_EXT + CSV_EXT + JSONL_EXT)
        )
    return to_table(raw, rejects, table)


def raw_chunks(path: Path, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """A Parquet or CSV file's columns plus LINE, in chunks of about `chunk_rows` records
    (LINE numbers the whole file); at least one chunk, empty for an empty Parquet file."""
    if path.suffix.lower() in PARQUET_EXT:
        yield from _parquet_chunks(path, chunk_rows)
    else:
        for block in csv_blocks(path, chunk_rows):
            yield _parse_csv(block.data, block.line_shift)


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[pl.DataFrame]:
    # Only this file is read: a hive folder name (day=2026-01-01/) adds no column.
    try:
        pf = pq.ParquetFile(path)
        groups = [pf.metadata.row_group(k).num_rows for k in range(pf.metadata.num_row_groups)]
    except Exception as e:  # truncated/garbage files raise various arrow errors
        raise SourceError(f"unreadable Parquet file: {_short(e)}") from e
    if not sum(groups):  # an empty file still reports its (zero) rows and its columns
        yield _with_line(pf.schema_arrow.empty_table(), 1)
        return
    if max(groups) > chunk_rows:  # a row group larger than a chunk: Arrow reads within it
        yield from _arrow_chunks(pf, chunk_rows, range(len(groups)), 1)
        return
    # Whole row groups, about chunk_rows at a time, read by polars' own reader: a third of
    # the CPU of Arrow batches converted to polars (10 M attempts: 0.9 against 3.3 s).
    offset, first = 1, 0
    for span, count in _spans(groups, chunk_rows):
        try:
            df = (pl.scan_parquet(path, hive_partitioning=False, glob=False)
                  .slice(offset - 1, span).collect())
        except Exception:
            # what polars cannot read (a type it lacks, a damaged page) Arrow reads or
            # reports, from this row group on
            yield from _arrow_chunks(pf, chunk_rows, range(first, len(groups)), offset)
            return
        # one chunk per row group as read; made contiguous once here, the checks after it
        # run several times faster (10 M attempts: ~0.9 CPU s to copy, ~2.8 s saved)
        yield _with_line(df.rechunk(), offset)
        offset, first = offset + span, first + count


def _spans(groups: list[int], chunk_rows: int) -> Iterator[tuple[int, int]]:
    """(rows, row groups) per chunk: consecutive row groups summing to at most `chunk_rows`
    (each group at most chunk_rows itself)."""
    span = count = 0
    for n in groups:
        if span and span + n > chunk_rows:
            yield span, count
            span = count = 0
        span += n
        count += 1
    if count:
        yield span, count


def _arrow_chunks(pf: pq.ParquetFile, chunk_rows: int, groups: range, offset: int
                  ) -> Iterator[pl.DataFrame]:
    """Row groups `groups` as Arrow batches of at most chunk_rows, the first at row `offset`."""
    batches = pf.iter_batches(batch_size=chunk_rows, row_groups=list(groups))
    while True:
        try:
            batch = next(batches, None)
        except Exception as e:
            raise SourceError(f"unreadable Parquet file at row {offset}: {_short(e)}") from e
        if batch is None:
            break
        yield _with_line(batch, offset)
        offset += batch.num_rows


def _with_line(data: pa.RecordBatch | pa.Table | pl.DataFrame, first: int) -> pl.DataFrame:
    df = data if isinstance(data, pl.DataFrame) else pl.from_arrow(data)
    assert isinstance(df, pl.DataFrame)
    return df.with_row_index(LINE, offset=first).with_columns(pl.col(LINE).cast(pl.Int64))


# --- readers: each returns the file's columns plus LINE ------------------------------------


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        df = pl.read_parquet(path, hive_partitioning=False)
    except Exception as e:  # truncated/garbage files raise various polars/arrow errors
        raise SourceError(f"unreadable Parquet file: {_short(e)}") from e
    return df.with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64))


def _read_csv(path: Path) -> pl.DataFrame:
    """The whole CSV file at once (readers that need every row together, e.g. a rebased
    arrival trace)."""
    return _parse_csv(path.read_bytes())


def _parse_csv(data: bytes, line_shift: int = 0) -> pl.DataFrame:
    """A CSV text (header record first) as String columns plus LINE; `line_shift` places a
    block of a big file (csv_blocks) in the file."""
    if not data.strip():
        raise SourceError("empty file; expected a CSV header line")
    try:
        df = pl.read_csv(data, infer_schema=False, raise_if_empty=True)
    except Exception:
        df = None
    if df is None or any("\ufffd" in c for c in df.columns):
        # Ragged rows, odd quoting or bytes that are not UTF-8 (polars replaces them in the
        # header): the csv module reports per record, with exact lines.
        return _parse_csv_slow(data, line_shift)
    # Line of each record: header is line 1; quoted fields may span several physical lines.
    nl = pl.lit(0, dtype=pl.Int64)
    if b'"' in data:
        nl = pl.sum_horizontal(
            pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in df.columns
        )
    first = 2 + line_shift
    df = df.with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + first + nl.cum_sum().shift(1, fill_value=0))
        .alias(LINE)
    )
    # polars turns a blank line into an all-null row; it is not a record.
    return df.filter(~pl.all_horizontal(pl.exclude(LINE).is_null()))


def _parse_csv_slow(data: bytes, line_shift: int) -> pl.DataFrame:
    text, dirty = _decode(data)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header:
            raise SourceError("empty file; expected a CSV header line")
        if dirty and any(UNDECODED.search(h) for h in header):
            raise SourceError("CSV header line is not valid UTF-8 text")
        if len(set(header)) != len(header):
            raise SourceError(f"duplicate column names in header: {header}")
        lines: list[int] = []
        records: list[list[str]] = []
        refused: list[tuple[int, str | None, str]] = []  # line, field, reason
        start = reader.line_num + 1
        for row in reader:
            if row:  # blank lines are not records
                undecoded = dirty and _undecoded_field(row, header)
                if undecoded:
                    refused.append((start + line_shift, undecoded[0], NOT_UTF8))
                elif len(row) == len(header):
                    lines.append(start + line_shift)
                    records.append(row)
                else:
                    refused.append((start + line_shift, None,
                                    f"expected {len(header)} fields, found {len(row)}"))
            start = reader.line_num + 1
    except csv.Error as e:
        raise SourceError(f"unreadable CSV: {e}") from e
    cols = list(zip(*records, strict=True)) if records else [()] * len(header)
    df = pl.DataFrame(
        {h: pl.Series(h, c, dtype=pl.String) for h, c in zip(header, cols, strict=True)}
    ).with_columns(pl.Series(LINE, lines, dtype=pl.Int64))
    df = df.with_columns(pl.col(h).replace("", None) for h in header)
    if refused:  # carried as marker columns so to_table can quarantine them uniformly
        extra = pl.DataFrame(
            refused, schema={LINE: pl.Int64, RAGGED_FIELD: pl.String, RAGGED: pl.String},
            orient="row",
        )
        df = pl.concat([df, extra], how="diagonal_relaxed")
    return df


def _decode(data: bytes) -> tuple[str, bool]:
    """The text, and whether some bytes were not UTF-8 (kept as surrogates, found per record
    by UNDECODED)."""
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return data.decode("utf-8-sig", errors="surrogateescape"), True


def _undecoded_field(row: list[str], header: list[str]) -> tuple[str | None] | None:
    """(column,) of the first field holding a byte that was not UTF-8 ((None,) past the
    header's columns), or None when the record decoded."""
    for k, value in enumerate(row):
        if UNDECODED.search(value):
            return (header[k] if k < len(header) else None,)
    return None


_BLANK_LINE = re.compile(rb"(^|\n)[ \t\r]*(\n|$)")


def _read_jsonl(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    data = path.read_bytes()
    if data.strip() and not _BLANK_LINE.search(data.rstrip(b"\r\n")):
        try:  # fast path: every line is a JSON object, so record number = line number
            df = pl.read_ndjson(data, infer_schema_length=None)
        except Exception:
            df = None
        if df is not None and not any(
            isinstance(t, pl.Struct) or (isinstance(t, pl.List) and c != "gpu_ids")
            for c, t in df.schema.items()
        ):
            df = df.with_columns(
                pl.col(c).cast(pl.List(pl.String) if isinstance(t, pl.List) else pl.String)
                for c, t in df.schema.items()
            )
            return df.with_row_index(LINE, offset=1).with_columns(
                pl.col(LINE).cast(pl.Int64)
            ), empty_rejects()
    return _read_jsonl_slow(data)


def _read_jsonl_slow(data: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(f"not UTF-8 text (byte offset {e.start})") from e
    columns: dict[str, list[Any]] = {}
    lines: list[int] = []
    bad: list[tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            bad.append((n, f"invalid JSON: {e.msg} (column {e.colno})"))
            continue
        if not isinstance(rec, dict):
            bad.append((n, f"expected a JSON object, found {type(rec).__name__}"))
            continue
        i = len(lines)
        lines.append(n)
        for k, v in rec.items():
            col = columns.setdefault(k, [None] * i)
            col.extend([None] * (i - len(col)))
            col.append(_json_text(v))
    for col in columns.values():
        col.extend([None] * (len(lines) - len(col)))
    df = pl.DataFrame({k: pl.Series(k, v, dtype=pl.String) for k, v in columns.items()})
    df = df.with_columns(pl.Series(LINE, lines, dtype=pl.Int64))
    rejects = pl.DataFrame(
        {"line": [b[0] for b in bad], "field": [None] * len(bad), "reason": [b[1] for b in bad]},
        schema={k: REJECT_SCHEMA[k] for k in ("line", "field", "reason")},
    ).with_columns(pl.lit(None, dtype=pl.String).alias("value"))
    return df, rejects


def _json_text(v: Any) -> str | None:
    """A JSON value as text for the shared parser (lists/objects keep their JSON form)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return json.dumps(v)


# --- coercion to the table's dtypes ---------------------------------------------------------


def to_table(raw: pl.DataFrame, rejects: pl.DataFrame, table: str) -> Parsed:
    """Coerce raw columns (text or typed) + LINE to `table`'s dtypes; unparseable values go to
    rejects. Shared by every adapter that builds a frame of source values."""
    spec = table_columns(table)
    present = [c for c in raw.columns if c != LINE and c not in MARKERS]
    records = raw.height + rejects.get_column("line").n_unique()
    if raw.height or present:
        missing = [c for c, (_, nullable) in spec.items() if not nullable and c not in present]
        if missing:
            raise SourceError(
                f"missing required column(s) {', '.join(missing)} for table {table!r}; "
                f"found {', '.join(present) or 'none'}"
            )
    ignored = [c for c in present if c not in spec]
    values: list[pl.Expr] = []
    fails: list[tuple[str, str]] = []
    for col, (dtype, _) in spec.items():
        if col not in present:  # optional column absent from the file
            values.append(pl.lit(None, dtype=dtype).alias(f"__v_{col}"))
            continue
        value, reason = _coerce(col, raw.schema[col], dtype)
        values.append(value.alias(f"__v_{col}"))
        if reason is not None:
            fails.append((col, reason))
    if not fails and RAGGED not in raw.columns:
        # Typed input already in shape (the usual Parquet case): nothing can have failed.
        good = raw.select(*values, pl.col(LINE)).rename({f"__v_{c}": c for c in spec})
        return Parsed(table, good, rejects, records, ignored, _dropped(raw, ignored))
    raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in MARKERS
                           if c not in raw.columns)
    df = raw.with_columns(values).with_columns(
        (pl.col(f"__v_{col}").is_null() & _given(col, raw.schema[col])).alias(f"__fail_{col}")
        for col, _ in fails
    )
    any_fail = pl.any_horizontal(
        pl.col(RAGGED).is_not_null(), *[pl.col(f"__fail_{c}") for c, _ in fails]
    )
    bad = df.filter(any_fail)
    parts = [
        rejects,
        bad.filter(pl.col(RAGGED).is_not_null()).select(
            pl.col(LINE).alias("line"),
            pl.col(RAGGED_FIELD).alias("field"),
            pl.col(RAGGED).alias("reason"),
            pl.lit(None, dtype=pl.String).alias("value"),
        ),
    ]
    for col, reason in fails:
        # The value as written in the file (what the operator will search for), never an id.
        value = (
            pl.lit(None, dtype=pl.String)
            if col in IDENTIFIER_COLUMNS
            else pl.col(col).cast(pl.String).str.slice(0, MAX_VALUE_CHARS)
        )
        parts.append(
            bad.filter(pl.col(f"__fail_{col}")).select(
                pl.col(LINE).alias("line"),
                pl.lit(col, dtype=pl.String).alias("field"),
                pl.lit(reason, dtype=pl.String).alias("reason"),
                value.alias("value"),
            )
        )
    good = df.filter(~any_fail).select(*[pl.col(f"__v_{c}").alias(c) for c in spec], pl.col(LINE))
    all_rejects = pl.concat(
        [p.select(pl.col(k).cast(t) for k, t in REJECT_SCHEMA.items()) for p in parts]
    ).sort("line", "field", nulls_last=True)
    return Parsed(table, good, all_rejects, records, ignored, _dropped(raw, ignored))


def _dropped(raw: pl.DataFrame, ignored: list[str]) -> dict[str, int]:
    """Columns outside the table are dropped, never stored: count their given values."""
    if not ignored:
        return {}
    counts = raw.select(pl.col(c).is_not_null().sum() for c in ignored).row(0)
    return {c: int(n) for c, n in zip(ignored, counts, strict=True) if n}


def _given(col: str, src: pl.DataType) -> pl.Expr:
    """The input had a value here (empty text counts as missing, like a CSV empty field)."""
    if src == pl.String:
        return (pl.col(col).str.strip_chars().str.len_chars() > 0).fill_null(False)
    return pl.col(col).is_not_null()


def _coerce(col: str, src: pl.DataType, dst: pl.DataType) -> tuple[pl.Expr, str | None]:
    """Expression converting column `col` from `src` to `dst`, and the reason used when a
    given value does not convert (None when conversion cannot fail)."""
    c = pl.col(col)
    if src == dst:  # typed input (Parquet) already in shape: nothing to convert
        return c, None
    if src == pl.Null:
        return c.cast(dst), None
    if src == pl.String:
        return _parse_text(c, dst)
    if isinstance(dst, pl.Datetime):
        if isinstance(src, pl.Datetime):
            if src.time_zone is not None:
                c = c.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            return c.dt.cast_time_unit("us"), None
        if src == pl.Date:
            return c.cast(pl.Datetime("us")), None
    elif dst.is_integer() and (src.is_integer() or src.is_float()):
        as_int = pl.when(c.cast(pl.Float64).round() == c.cast(pl.Float64)).then(
            c.cast(pl.Int64, strict=False)
        )
        in_range = as_int.is_between(-INT32_MAX - 1, INT32_MAX) if dst == pl.Int32 else pl.lit(True)
        return pl.when(in_range).then(as_int).cast(dst), EXPECTED[
            "int32" if dst == pl.Int32 else "int"
        ]
    elif dst.is_float() and (src.is_integer() or src.is_float()):
        return c.cast(dst), None
    elif dst == pl.String and (
        src.is_numeric() or isinstance(src, pl.Categorical | pl.Enum) or src == pl.Boolean
    ):
        return c.cast(pl.String), None
    elif isinstance(dst, pl.List) and isinstance(src, pl.List):
        return c.cast(dst), None
    raise SourceError(f"column {col!r} has type {src}; expected {dst}")


def _parse_text(c: pl.Expr, dst: pl.DataType) -> tuple[pl.Expr, str | None]:
    s = c.str.strip_chars()
    s = pl.when(s.str.len_chars() > 0).then(s)  # empty text is a missing value
    if isinstance(dst, pl.Datetime):
        norm = s.str.replace(r"[zZ]$", "+00:00").str.replace(r"^(\d{4}-\d\d-\d\d)[ t]", "${1}T")
        aware = norm.str.to_datetime(
            "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us", time_zone="UTC"
        ).dt.replace_time_zone(None)
        naive = norm.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
        return pl.coalesce(aware, naive), EXPECTED["ts"]  # naive text is UTC by contract
    if dst.is_integer():
        f = s.cast(pl.Float64, strict=False)
        as_int = pl.coalesce(
            s.cast(pl.Int64, strict=False),
            pl.when(f.is_finite() & (f.round() == f) & (f.abs() < 2**53)).then(f.cast(pl.Int64)),
        )
        if dst == pl.Int32:
            return pl.when(as_int.is_between(-INT32_MAX - 1, INT32_MAX)).then(as_int).cast(
                dst
            ), EXPECTED["int32"]
        return as_int.cast(dst), EXPECTED["int"]
    if dst.is_float():
        return s.cast(dst, strict=False), EXPECTED["float"]
    if isinstance(dst, pl.List):
        # "a,b", "a;b" or a JSON array '["a","b"]'
        items = (
            s.str.replace_all(r"[\[\]\"' ]", "")
            .str.split(",")
            .list.eval(pl.element().str.split(";").explode())
        )
        return items.list.eval(pl.element().filter(pl.element().str.len_chars() > 0)), None
    return s, None


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg[:200]

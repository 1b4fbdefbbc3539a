"""Adapter for `tabular` sources: any CSV/Parquet plus a column mapping and unit conversions
from pilot.yaml, e.g.

    options: {columns: {ts: timestamp, node: host, value: util}, series: gpu_util,
              units: {ts: epoch_s, value: percent}, formats: {}, constants: {pool: pool-a}}

`columns` maps canonical column -> source column; source columns already named like the
table pass through; every other column is dropped and counted. `units` converts epochs
(epoch_s/ms/us/ns), relative offsets (s/ms/us from options.start or the first phase), and
values (percent -> 0..1, ms/us -> s, KiB/MiB/GiB -> bytes, mJ -> J); `formats` gives a
strftime pattern for text timestamps; naive times are read in options.timezone (else the
pilot's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.config import Source
from pipelines.ingest import convert
from pipelines.ingest.base import LINE, AdapterContext, Parsed, SourceError, empty_rejects
from pipelines.ingest.canonical import CSV_EXT, PARQUET_EXT, raw_chunks, to_table
from schemas import table_columns


def read_tabular(path: Path, source: Source, ctx: AdapterContext) -> Iterator[Parsed]:
    """Chunks of about `ctx.chunk_rows` rows: every option applies row by row."""
    assert source.table is not None  # config validation requires it for `tabular`
    ext = path.suffix.lower()
    if ext not in CSV_EXT + PARQUET_EXT + (".tsv", ".txt"):
        raise SourceError(f"unsupported file extension {ext!r}; expected .csv or .parquet")
    for raw in raw_chunks(path, ctx.chunk_rows):
        yield map_frame(raw, source.table, source.options, ctx)


def map_frame(raw: pl.DataFrame, table: str, opts: dict[str, Any], ctx: AdapterContext
              ) -> Parsed:
    """Rename, add constants, convert units, then coerce like a canonical file."""
    spec = table_columns(table)
    columns = _mapping(opts.get("columns") or {}, spec, raw.columns)
    renamed = raw.select(
        pl.col(LINE),
        *[pl.col(src).alias(dst) for dst, src in columns.items()],
        *[pl.col(c) for c in raw.columns
          if c != LINE and c not in columns.values() and c not in columns],
    ) if columns else raw
    for col, value in (opts.get("constants") or {}).items():
        if col not in spec:
            raise SourceError(f"options.constants: unknown column {col!r} of table {table!r}")
        renamed = renamed.with_columns(pl.lit(str(value)).alias(col))
    if table == "samples" and "series" not in renamed.columns and opts.get("series"):
        renamed = renamed.with_columns(pl.lit(str(opts["series"])).alias("series"))
    tz = str(opts.get("timezone") or ctx.timezone)
    anchor = convert.parse_instant(opts.get("start"), tz) or ctx.anchor
    units: dict[str, str] = dict(opts.get("units") or {})
    formats: dict[str, str] = dict(opts.get("formats") or {})
    convs: dict[str, convert.Conv] = {}
    for col in sorted(set(units) | set(formats)):
        if col not in spec:
            raise SourceError(f"options.units/formats: unknown column {col!r} of table {table!r}")
        if col not in renamed.columns:
            continue
        dtype = spec[col][0]
        if isinstance(dtype, pl.Datetime):
            convs[col] = convert.timestamp(col, units.get(col), tz, formats.get(col), anchor)
        else:
            convs[col] = convert.number(col, units.get(col))
    good, rejects = convert.apply(renamed, convs)
    parsed = to_table(good, pl.concat([empty_rejects(), rejects]), table)
    return parsed


def _mapping(columns: dict[str, Any], spec: dict[str, Any], present: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for dst, src in columns.items():
        if dst not in spec:
            raise SourceError(
                f"options.columns: {dst!r} is not a column of the table; "
                f"expected one of {', '.join(spec)}"
            )
        if str(src) not in present:
            raise SourceError(
                f"options.columns.{dst}: source column {src!r} not found; "
                f"found {', '.join(c for c in present if not c.startswith('__'))}"
            )
        out[dst] = str(src)
    return out

"""Adapter for `nvidia-smi`: `nvidia-smi --query-gpu=... --format=csv` logs.

Headers carry units (`utilization.gpu [%]`, `memory.used [MiB]`), values may too (`631.95 W`);
`[N/A]`/`[Not Supported]` mean "no measurement", not an error. Each CSV line (one GPU at one
time) is one record and gives one sample per measured column: mapped ones under canonical
names (gpu_util 0..1, power_w, mem_used_bytes, ...), other columns with a unit under their
source name. Text columns (name, driver, serial, PCI ids) are dropped and counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from pipelines.config import Source
from pipelines.ingest import convert
from pipelines.ingest.base import (
    LINE,
    MAX_VALUE_CHARS,
    REJECT_SCHEMA,
    AdapterContext,
    Parsed,
    SourceError,
)
from pipelines.ingest.convert import parse_instant

# source column -> (canonical series, factor applied after the header's unit)
KNOWN: dict[str, tuple[str, float]] = {
    "utilization.gpu": ("gpu_util", 0.01),
    "power.draw": ("power_w", 1.0),
    "memory.used": ("mem_used_bytes", 1024.0**2),
    "utilization.memory": ("mem_util", 0.01),
    "temperature.gpu": ("temperature_c", 1.0),
}
ID_COLUMNS = {"uuid": "gpu", "index": "gpu_index", "hostname": "node"}
HEADER_RE = re.compile(r"^(?P<name>[^\[]+?)\s*(?:\[(?P<unit>[^\]]+)\])?$")
TIME_FORMAT = "%Y/%m/%d %H:%M:%S%.f"


def read_nvidia_smi(path: Path, source: Source, ctx: AdapterContext) -> Iterator[Parsed]:
    opts = source.options
    tz = str(opts.get("timezone") or ctx.timezone)
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise SourceError("binary file (NUL bytes); expected nvidia-smi CSV")
    if not data.strip():
        raise SourceError("empty file; expected an nvidia-smi CSV header line")
    try:
        df = pl.read_csv(data, infer_schema=False, raise_if_empty=True, truncate_ragged_lines=False)
    except Exception as e:
        raise SourceError(f"unreadable nvidia-smi CSV: {str(e).splitlines()[0][:200]}") from e
    names, units = _header(df.columns)
    df = df.rename(dict(zip(df.columns, names, strict=True)))
    # no quoting in nvidia-smi output: record k sits on line k + 2 (header is line 1)
    df = df.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))
    if "timestamp" in df.columns:
        ts = convert.timestamp("timestamp", None, tz, fmt=opts.get("time_format", TIME_FORMAT))
    else:
        at = parse_instant(opts.get("scraped_at"), tz)
        if at is None:
            at = parse_instant(path.stat().st_mtime)
        ts = convert.Conv(pl.lit(at, dtype=pl.Datetime("us")), pl.lit(False), "")
    node = convert.text("hostname") if "hostname" in df.columns else pl.lit(opts.get("node"))
    gpu = convert.text("uuid") if "uuid" in df.columns else (
        convert.text("index") if "index" in df.columns else pl.lit(None, pl.String))
    measured = [c for c in names if c in KNOWN or (units.get(c) and c not in ID_COLUMNS)]
    convs = {"timestamp": ts} | {
        f"__m_{c}": convert.number(c) for c in measured
    }
    work = df.with_columns(
        node.cast(pl.String).alias("__node"), gpu.cast(pl.String).alias("__gpu")
    )
    good, rejects = _convert_keeping_rows(work, convs)
    long = good.unpivot(
        index=[LINE, "timestamp", "__node", "__gpu"],
        on=[f"__m_{c}" for c in measured],
        variable_name="__col",
        value_name="value",
    ).filter(pl.col("value").is_not_null())
    series = {f"__m_{c}": KNOWN.get(c, (c, 1.0)) for c in measured}
    long = long.with_columns(
        pl.col("__col").replace_strict({k: v[0] for k, v in series.items()}).alias("series"),
        (pl.col("value") * pl.col("__col").replace_strict(
            {k: v[1] * _unit_factor(units.get(k[4:])) for k, v in series.items()},
            return_dtype=pl.Float64)).alias("value"),
    )
    frame = long.select(
        pl.col("timestamp").alias("ts"),
        "series",
        pl.lit(None if opts.get("pool") is None else str(opts["pool"]), pl.String).alias("pool"),
        pl.col("__node").alias("node"),
        pl.col("__gpu").alias("gpu"),
        "value",
        pl.lit(None, pl.Float64).alias("le"),
        LINE,
    ).sort(LINE)
    # a line with no measurement at all (every value [N/A]) is refused, not lost silently
    empty = df.filter(
        ~pl.col(LINE).is_in(frame.get_column(LINE).implode())
        & ~pl.col(LINE).is_in(rejects.get_column("line").implode())
    ).select(
        pl.col(LINE).alias("line"),
        pl.lit(None, pl.String).alias("field"),
        pl.lit("no measured value in this record (all [N/A] or missing)").alias("reason"),
        pl.lit(None, pl.String).alias("value"),
    )
    dropped_cols = [c for c in names if c not in measured and c not in ("timestamp", "uuid",
                                                                        "hostname")]
    counts = df.select(convert.text(c).is_not_null().sum().alias(c) for c in dropped_cols)
    dropped = {c: int(n) for c, n in counts.row(0, named=True).items() if n} if dropped_cols \
        else {}
    all_rejects = pl.concat([rejects, empty]).cast(REJECT_SCHEMA).sort("line", "field")
    yield Parsed("samples", frame, all_rejects,
                 df.height, dropped=dropped)


def _convert_keeping_rows(df: pl.DataFrame, convs: dict[str, convert.Conv]
                          ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Like convert.apply, but a bad measurement refuses only its record's whole line (the
    record is quarantined) while a bad timestamp refuses the record too: both drop the row."""
    source_cols = {k: k[4:] for k in convs if k.startswith("__m_")}
    renamed = df.with_columns(pl.col(src).alias(k) for k, src in source_cols.items())
    good, rejects = convert.apply(renamed, convs, source_cols={})
    rejects = rejects.with_columns(
        pl.col("field").str.replace(r"^__m_", ""),
        pl.col("value").str.slice(0, MAX_VALUE_CHARS),
    )
    return good, rejects


def _header(cols: list[str]) -> tuple[list[str], dict[str, str]]:
    names, units = [], {}
    for c in cols:
        m = HEADER_RE.match(c.strip())
        name = (m.group("name") if m else c).strip()
        if name in names:
            raise SourceError(f"duplicate column {name!r} in the nvidia-smi header")
        names.append(name)
        if m and m.group("unit"):
            units[name] = m.group("unit").strip()
    if not names or names == [""]:
        raise SourceError("no header; expected nvidia-smi --format=csv output")
    return names, units


def _unit_factor(unit: str | None) -> float:
    # values already in the header's unit; convert to the canonical one where it differs
    return {"MiB": 1.0, "%": 1.0}.get(unit or "", 1.0)

"""Adapter for `arrival-trace`: public LLM workload traces, stored in `arrivals`.

Formats (`options.format`, else detected from the header / extension):
- `azure`: Azure LLM inference CSV `TIMESTAMP,ContextTokens,GeneratedTokens` (absolute,
  naive times read in `options.timezone`, default UTC);
- `mooncake`: Mooncake JSONL `timestamp,input_length,output_length` (ms from trace start;
  `hash_ids` are dropped and counted);
- `burstgpt`: BurstGPT CSV `Timestamp,Model,Request tokens,Response tokens,...` (s from start).
Relative times are anchored at `options.start`, else at the start of the first phase;
`options.rebase: true` moves an absolute trace so that its first arrival sits there too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.config import Source
from pipelines.ingest import convert
from pipelines.ingest.base import LINE, AdapterContext, Parsed, SourceError
from pipelines.ingest.canonical import MARKERS, _read_csv, _read_jsonl, to_table

FORMATS: dict[str, dict[str, Any]] = {
    "azure": {"ts": "TIMESTAMP", "in": "ContextTokens", "out": "GeneratedTokens", "unit": None},
    "mooncake": {"ts": "timestamp", "in": "input_length", "out": "output_length", "unit": "ms"},
    "burstgpt": {"ts": "Timestamp", "in": "Request tokens", "out": "Response tokens",
                 "unit": "s"},
}


def read_arrival_trace(path: Path, source: Source, ctx: AdapterContext) -> Iterator[Parsed]:
    opts = source.options
    ext = path.suffix.lower()
    if ext in (".jsonl", ".ndjson", ".json"):
        raw, rejects = _read_jsonl(path)
    elif ext in (".csv", ".txt"):
        raw, rejects = _read_csv(path), None
    else:
        raise SourceError(f"unsupported file extension {ext!r}; expected .csv or .jsonl")
    fmt = str(opts.get("format") or _detect(raw.columns))
    if fmt not in FORMATS:
        raise SourceError(f"options.format: unknown trace format {fmt!r}; expected "
                          + ", ".join(FORMATS))
    f = FORMATS[fmt]
    missing = [c for c in (f["ts"], f["in"], f["out"]) if c not in raw.columns]
    if missing:
        raise SourceError(f"{fmt} trace: missing column(s) {', '.join(missing)}; "
                          f"found {', '.join(c for c in raw.columns if not c.startswith('__'))}")
    tz = str(opts.get("timezone") or "UTC")
    anchor = convert.parse_instant(opts.get("start"), ctx.timezone) or ctx.anchor
    if f["unit"] is not None and anchor is None:
        raise SourceError("relative trace needs an anchor: options.start or a pilot phase")
    renamed = raw.select(
        pl.col(LINE),
        pl.col(f["ts"]).cast(pl.String).alias("ts"),
        pl.col(f["in"]).cast(pl.String).alias("input_tokens"),
        pl.col(f["out"]).cast(pl.String).alias("output_tokens"),
        *[pl.col(c) for c in MARKERS if c in raw.columns],
    ).with_columns(pl.lit(str(opts.get("source") or fmt)).alias("source"))
    conv = {"ts": convert.timestamp("ts", f["unit"], tz, None, anchor)}
    good, bad = convert.apply(renamed, conv)
    if opts.get("rebase") and f["unit"] is None and anchor is not None and good.height:
        good = good.with_columns(pl.col("ts") - pl.col("ts").min() + pl.lit(anchor))
    rej = bad if rejects is None else pl.concat([rejects, bad])
    parsed = to_table(good, rej, "arrivals")
    ignored = [c for c in raw.columns if c not in (LINE, *MARKERS, f["ts"], f["in"], f["out"])]
    parsed.dropped = {
        c: n for c, n in zip(ignored, raw.select(pl.col(c).is_not_null().sum() for c in ignored)
                             .row(0) if ignored else [], strict=False) if n
    }
    parsed.ignored_columns = ignored
    yield parsed


def _detect(columns: list[str]) -> str:
    cols = set(columns)
    for name, f in FORMATS.items():
        if {f["ts"], f["in"], f["out"]} <= cols:
            return name
    raise SourceError(
        "unknown arrival-trace format; expected Azure (TIMESTAMP,ContextTokens,"
        "GeneratedTokens), Mooncake JSONL (timestamp,input_length,output_length) or BurstGPT "
        "(Timestamp,Request tokens,Response tokens), or set options.format"
    )

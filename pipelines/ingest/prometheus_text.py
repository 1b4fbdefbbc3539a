"""Adapter for `prometheus-text`: Prometheus text exposition scrapes (dcgm-exporter, vLLM
`/metrics`), histograms included (`_bucket{le=..}`, `_sum`, `_count`).

Each sample line is parsed by prometheus-client's own sample parser (label escaping, exemplars,
timestamps); the line loop is ours so that one bad line is quarantined with its line number
instead of failing the scrape. A sample's own timestamp wins, else `options.scraped_at`, else
the file's modification time. The file streams: memory is bounded by `ctx.chunk_rows`; a
chunk never ends between a histogram's first bucket and its `+Inf` bucket (written last),
so each histogram is judged whole: the
bucket rows of a histogram without a `+Inf` bucket at its time are quarantined. A family
declared twice (`# TYPE` again, e.g. scrapes appended to one file) is a warning of the file
(ingest_log), not a quarantine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import polars as pl

# prometheus-client (pinned) exposes no per-line public API; its sample parser is the
# maintained implementation of the exposition grammar, so we reuse it rather than a regex.
from prometheus_client.parser import _parse_sample

from pipelines.config import Source
from pipelines.ingest.base import (
    LINE,
    AdapterContext,
    Parsed,
    SourceError,
    rejects_frame,
)
from pipelines.ingest.convert import TS_MAX, TS_MIN, parse_instant
from pipelines.ingest.prom_names import LabelMapper, refuse_open_histograms, series_of

MAX_LINE_BYTES = 64 * 1024  # longer lines are junk, not samples: refused, not parsed
CACHE_SIZE = 200_000  # distinct series memoized per chunk (bounded memory)
MAX_EXAMPLES = 3  # duplicate # TYPE lines named in the file's warning
SAMPLE_COLUMNS = ("ts", "series", "pool", "node", "gpu", "value", "le")
_TS_LO = TS_MIN.replace(tzinfo=UTC).timestamp()
_TS_HI = TS_MAX.replace(tzinfo=UTC).timestamp()


def read_prometheus_text(path: Path, source: Source, ctx: AdapterContext) -> Iterator[Parsed]:
    opts = source.options
    default_ts = _default_ts(path, opts, ctx)
    mapper = LabelMapper(opts)
    with path.open("rb") as fh:
        head = fh.read(65536)
        if b"\x00" in head:
            raise SourceError("binary file (NUL bytes); expected Prometheus text exposition")
        fh.seek(0)
        buf = _Chunk()
        types = _TypeLines()
        for n, raw in enumerate(fh, start=1):
            if raw.startswith(b"# TYPE"):
                types.add(n, raw)
            _parse_line(n, raw, buf, mapper, default_ts)
            if buf.records >= ctx.chunk_rows and not buf.in_histogram(ctx.chunk_rows):
                yield buf.parsed(mapper)
                buf = _Chunk()
        yield buf.parsed(mapper, types.notes())


class _TypeLines:
    """`# TYPE` lines of one file: the first per family, and the duplicates."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}
        self.duplicates: list[tuple[int, str]] = []

    def add(self, n: int, raw: bytes) -> None:
        words = raw.decode("utf-8", errors="replace").split()
        if len(words) < 3 or words[1] != "TYPE":
            return
        name = words[2][:100]
        if name in self.first:
            self.duplicates.append((n, name))
        else:
            self.first[name] = n

    def notes(self) -> list[str]:
        if not self.duplicates:
            return []
        shown = ", ".join(f"{name!r} at line {n} (first at line {self.first[name]})"
                          for n, name in self.duplicates[:MAX_EXAMPLES])
        more = len(self.duplicates) - MAX_EXAMPLES
        return [f"{len(self.duplicates)} duplicate # TYPE line(s) for a family already declared "
                f"in this file: {shown}" + (f", and {more} more" if more > 0 else "")]


class _Chunk:
    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {c: [] for c in (*SAMPLE_COLUMNS, LINE)}
        self.bad: list[tuple[int, str | None, str, str | None]] = []
        self.records = 0
        self.cache: dict[str, tuple[Any, ...]] = {}  # series head -> parsed + mapped labels

    def in_histogram(self, chunk_rows: int) -> bool:
        """The last sample kept is a bucket below +Inf (the exposition format writes +Inf
        last, so more of its histogram follows); a chunk twice the size ends anyway."""
        le = self.cols["le"]
        return (bool(le) and le[-1] is not None and le[-1] != math.inf
                and self.records < 2 * chunk_rows)

    def parsed(self, mapper: LabelMapper, notes: list[str] | None = None) -> Parsed:
        c = self.cols
        frame = pl.DataFrame(
            {
                "ts": pl.Series(c["ts"], dtype=pl.Int64),
                "series": pl.Series(c["series"], dtype=pl.String),
                "pool": pl.Series(c["pool"], dtype=pl.String),
                "node": pl.Series(c["node"], dtype=pl.String),
                "gpu": pl.Series(c["gpu"], dtype=pl.String),
                "value": pl.Series(c["value"], dtype=pl.Float64),
                "le": pl.Series(c["le"], dtype=pl.Float64),
                LINE: pl.Series(c[LINE], dtype=pl.Int64),
            }
        ).with_columns(pl.from_epoch("ts", time_unit="us"))
        frame, open_buckets = refuse_open_histograms(frame)
        rejects = pl.concat([rejects_frame(self.bad), open_buckets])
        dropped, mapper.dropped = mapper.dropped, {}
        return Parsed("samples", frame, rejects, self.records, dropped=dropped,
                      notes=notes or [])


def _parse_line(n: int, raw: bytes, buf: _Chunk, mapper: LabelMapper, default_ts: float) -> None:
    if len(raw) > MAX_LINE_BYTES:
        buf.records += 1
        buf.bad.append((n, None, f"line longer than {MAX_LINE_BYTES} bytes; not a sample", None))
        return
    try:
        line = raw.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        buf.records += 1
        buf.bad.append((n, None, f"not UTF-8 text (byte {e.start})", None))
        return
    if n == 1:
        line = line.lstrip("\ufeff")
    if not line or line.startswith("#"):
        return  # HELP/TYPE/comments describe families; samples carry everything we keep
    buf.records += 1
    try:
        head, rest = _split(line)
        hit = buf.cache.get(head) if head is not None else None
        if hit is None:
            s = _parse_sample(line)
            series, factor = series_of(s.name)
            before = dict(mapper.dropped)
            pool, node, gpu, le = mapper.map(s.labels)
            gone = tuple(k for k in mapper.dropped if mapper.dropped[k] != before.get(k, 0))
            hit = (series, factor, pool, node, gpu, le, gone)
            if head is not None and len(buf.cache) < CACHE_SIZE:
                buf.cache[head] = hit
            value, stamp = float(s.value), s.timestamp
        else:
            for k in hit[6]:  # the labels this series drops, counted per sample
                mapper.dropped[k] = mapper.dropped.get(k, 0) + 1
            value = float(rest[0])
            stamp = float(rest[1]) / 1000 if len(rest) == 2 else None
    except Exception as e:  # the parser raises ValueError/IndexError/... on malformed lines
        buf.bad.append((n, None, f"not a Prometheus sample line: {_why(e)}", None))
        return
    series, factor, pool, node, gpu, le, _ = hit
    ts = default_ts if stamp is None else float(stamp)
    if not (math.isfinite(ts) and _TS_LO <= ts <= _TS_HI):
        buf.bad.append((n, "ts", "sample timestamp out of range (expected ms since epoch)",
                        str(stamp)))
        return
    c = buf.cols
    c["ts"].append(round(ts * 1e6))
    c["series"].append(series)
    c["pool"].append(pool)
    c["node"].append(node)
    c["gpu"].append(gpu)
    c["value"].append(value * factor)
    c["le"].append(le)
    c[LINE].append(n)


def _split(line: str) -> tuple[str | None, list[str]]:
    """`name{labels}` and the value/timestamp words after it. Scrapes repeat the same series
    every interval, so the label block is parsed (by prometheus-client) once per distinct
    series and memoized; value and timestamp are plain numbers. Exemplars or anything odd
    take the full parser (head None)."""
    brace = line.rfind("}")
    if brace == -1:
        parts = line.split()
        return (parts[0], parts[1:]) if len(parts) in (2, 3) else (None, [])
    rest = line[brace + 1 :].split()
    if len(rest) not in (1, 2) or "#" in line[brace:]:
        return None, []
    return line[: brace + 1], rest


def _default_ts(path: Path, opts: dict[str, Any], ctx: AdapterContext) -> float:
    if opts.get("scraped_at") is not None:
        at = parse_instant(opts["scraped_at"], ctx.timezone)
        if at is None:
            raise SourceError(
                f"options.scraped_at: {opts['scraped_at']!r} is not a time; expected ISO-8601"
            )
        return at.replace(tzinfo=UTC).timestamp()
    return path.stat().st_mtime


def _why(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    # the parser echoes the line; keep the reason short and never the raw text
    return msg.split(":", 1)[0][:80] if ":" in msg else msg[:80]


__all__ = ["read_prometheus_text"]

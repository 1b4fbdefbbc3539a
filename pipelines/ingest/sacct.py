"""Adapter for `sacct`: Slurm `sacct --parsable` and `--parsable2` dumps, with or without a
header line.

The field list comes from the header, else from `options.fields` ("JobID|State|..." or a
list); the delimiter from `options.delimiter` (default `|`). `--parsable` ends every line
(header included) with the delimiter: a line of exactly one field too many whose last field
is empty is read as such, so both forms (even mixed) load; any other field count is
quarantined with "expected N fields ..., found M". A line with a byte that is not UTF-8 is
quarantined alone ("not valid UTF-8"), with its field when it can be told. Job steps (`123.batch`,
`123.0`, `123.extern`) fold into their job: the job line wins, a job seen only through its
steps takes its first step's fields. One job = one record. Naive times are read in
`options.timezone`, else the pilot's; `Unknown`/`None` times are missing values. States such
as `CANCELLED by 1234` keep `CANCELLED` (the uid is an identifier: dropped and counted).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.config import Source
from pipelines.ingest import convert
from pipelines.ingest.base import LINE, AdapterContext, Parsed, SourceError, rejects_frame
from pipelines.ingest.canonical import to_table

# sacct field (lower case) -> canonical jobs column
FIELD_MAP = {
    "jobid": "job_id",
    "state": "state",
    "partition": "queue",
    "priority": "priority",
    "submit": "submit_ts",
    "eligible": "eligible_ts",
    "start": "start_ts",
    "end": "end_ts",
    "nodelist": "node",
}
TIME_FIELDS = ("submit_ts", "eligible_ts", "start_ts", "end_ts")
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE")
MAX_LINE_CHARS = 64 * 1024
UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


def read_sacct(path: Path, source: Source, ctx: AdapterContext) -> Iterator[Parsed]:
    opts = source.options
    delim = str(opts.get("delimiter", "|"))
    if len(delim) != 1:
        raise SourceError(f"options.delimiter: expected one character, found {delim!r}")
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise SourceError("binary file (NUL bytes); expected sacct --parsable2 text")
    lines = data.decode("utf-8-sig", errors="surrogateescape").splitlines()
    header, first = _header(lines, opts, delim)
    lower = [h.strip().lower() for h in header]
    for need in ("jobid", "state"):
        if need not in lower:
            raise SourceError(f"field list has no {need!r} field; found {'|'.join(header)}")
    numbered = [(n, ln) for n, ln in enumerate(lines, start=1) if n >= first and ln.strip()]
    bad: list[tuple[int, str | None, str, str | None]] = []
    keep: list[tuple[int, list[str]]] = []
    for n, ln in numbered:
        if len(ln) > MAX_LINE_CHARS:
            bad.append((n, None, f"line longer than {MAX_LINE_CHARS} characters", None))
            continue
        parts = ln.split(delim)
        if len(parts) == len(header) + 1 and parts[-1] == "":
            parts.pop()  # --parsable: the line ends with the delimiter
        if UNDECODED.search(ln):
            bad.append((n, _undecoded_field(parts, header), "not valid UTF-8", None))
            continue
        # sacct leaves trailing empty fields off some lines; more fields, or a single one,
        # means a wrong delimiter or a broken line
        if len(parts) > len(header) or (len(parts) == 1 and len(header) > 1):
            bad.append((n, None, f"expected {len(header)} fields separated by {delim!r}, "
                        f"found {len(parts)}", None))
            continue
        keep.append((n, parts + [""] * (len(header) - len(parts))))
    raw = pl.DataFrame(
        {h: pl.Series([p[k] for _, p in keep], dtype=pl.String) for k, h in enumerate(lower)}
    ).with_columns(pl.Series(LINE, [n for n, _ in keep], dtype=pl.Int64))
    yield _fold(raw, opts, ctx, bad)


def _undecoded_field(parts: list[str], header: list[str]) -> str | None:
    """The field holding the first byte that was not UTF-8 (its canonical column name where
    there is one), when the line is not longer than the header."""
    k = next((k for k, p in enumerate(parts) if UNDECODED.search(p)), len(header))
    if len(parts) > len(header) or k >= len(header):
        return None
    name = header[k].strip()
    return FIELD_MAP.get(name.lower(), name)


def _header(lines: list[str], opts: dict[str, Any], delim: str) -> tuple[list[str], int]:
    first = next((ln for ln in lines if ln.strip()), "")
    cells = [c.strip() for c in first.split(delim)]
    if len(cells) > 1 and cells[-1] == "":
        cells.pop()  # --parsable header: ends with the delimiter
    if any(c.lower() == "jobid" for c in cells):
        if UNDECODED.search(first):
            raise SourceError("header line is not valid UTF-8 text")
        return cells, lines.index(first) + 2
    fields = opts.get("fields")
    if fields is None:
        raise SourceError(
            "no header line (expected a first line naming JobID, State, ...) and no "
            "options.fields; give the --format field list, e.g. 'JobID|State|Submit|Start|End'"
        )
    if isinstance(fields, str):
        fields = [f for f in fields.replace(",", delim).split(delim)]
    names = [str(f).strip() for f in fields]
    while len(names) > 1 and names[-1] == "":
        names.pop()  # a field list copied from a --parsable header keeps its last '|'
    return names, 1


def _fold(raw: pl.DataFrame, opts: dict[str, Any], ctx: AdapterContext,
          bad: list[tuple[int, str | None, str, str | None]]) -> Parsed:
    tz = str(opts.get("timezone") or ctx.timezone)
    jobid = pl.col("jobid").str.strip_chars()
    df = raw.with_columns(
        jobid.str.replace(r"\..*$", "").alias("__job"),
        jobid.str.contains(".", literal=True).alias("__step"),
    ).filter(pl.col("__job").str.len_chars() > 0)
    no_id = raw.filter(jobid.fill_null("").str.len_chars() == 0).get_column(LINE).to_list()
    bad += [(n, "job_id", "missing required value", None) for n in no_id]
    # job line first, then its steps in file order; the job (or its first step) speaks for it
    df = df.sort("__job", "__step", LINE).group_by("__job", maintain_order=True).agg(
        pl.all().exclude("__job", "__step").first(),
        pl.col("start").filter(pl.col("start").is_not_null()).min().alias("__first_start")
        if "start" in df.columns else pl.lit(None).alias("__first_start"),
    ).sort(LINE)
    cols: dict[str, pl.Expr] = {"job_id": pl.col("__job")}
    for src, dst in FIELD_MAP.items():
        if src in df.columns and dst != "job_id":
            cols[dst] = convert.text(src)
    state = pl.col("state").str.strip_chars().str.to_uppercase()
    cols["state"] = state.str.replace(r"\s+BY\s+.*$", "")
    if "queue" not in cols and "qos" in df.columns:
        cols["queue"] = convert.text("qos")
    cols["kind"] = pl.lit(str(opts.get("kind", "batch")))
    if opts.get("pool") is not None:
        cols["pool"] = pl.lit(str(opts["pool"]))
    tres = next((c for c in ("alloctres", "reqtres", "allocgres", "reqgres") if c in df.columns),
                None)
    if tres is not None:
        cols["gpus"] = _gpus(tres)
    if "node" in cols:
        cols["node"] = pl.when(~cols["node"].str.to_lowercase().str.starts_with("none"))\
            .then(cols["node"])
    out = df.select(pl.col(LINE), *[e.alias(k) for k, e in cols.items()],
                    *[pl.col(c) for c in ("elapsed",) if c in df.columns])
    cancelled_by = df.get_column("state").str.contains(r"(?i)\sby\s").sum()
    convs = {c: convert.timestamp(c, None, tz) for c in TIME_FIELDS if c in out.columns}
    if "priority" in out.columns:
        convs["priority"] = convert.number("priority")
    good, rejects = convert.apply(out, convs)
    if "elapsed" in good.columns and "start_ts" in good.columns:
        # a finished job whose End is Unknown still has Start + Elapsed
        secs = _elapsed_s(pl.col("elapsed"))
        end = pl.col("end_ts") if "end_ts" in good.columns else pl.lit(None, pl.Datetime("us"))
        good = good.with_columns(
            pl.when(end.is_null() & pl.col("state").str.extract(r"^(\w+)").is_in(TERMINAL))
            .then(pl.col("start_ts") + pl.duration(microseconds=(secs * 1e6).cast(pl.Int64)))
            .otherwise(end)
            .alias("end_ts")
        ).drop("elapsed")
    parsed = to_table(good, pl.concat([rejects_frame(bad), rejects]), "jobs")
    parsed.ignored_columns = []
    parsed.dropped = {"State:by_uid": int(cancelled_by)} if cancelled_by else {}
    return parsed


def _gpus(col: str) -> pl.Expr:
    """`gres/gpu=4` or `gres/gpu:a100=2,gres/gpu:h100=2` (TRES) or `gpu:4` (GRES) -> count."""
    s = pl.col(col).fill_null("")
    tres = s.str.extract_all(r"gres/gpu(?::[^=,]+)?=(\d+)")
    typed = tres.list.eval(pl.element().str.extract(r"=(\d+)$").cast(pl.Int64))
    has_typed = s.str.contains(r"gres/gpu:[^=,]+=")
    plain = s.str.extract(r"gres/gpu=(\d+)").cast(pl.Int64)
    gres = s.str.extract(r"(?:^|,)gpu(?::[^:,]+)?:(\d+)").cast(pl.Int64)
    return (
        pl.when(has_typed).then(typed.list.sum()).otherwise(pl.coalesce(plain, gres))
        .cast(pl.Int64)
    )


def _elapsed_s(e: pl.Expr) -> pl.Expr:
    """`[D-]HH:MM:SS` or `MM:SS[.mmm]` -> seconds."""
    s = e.str.strip_chars()
    days = s.str.extract(r"^(\d+)-").cast(pl.Float64).fill_null(0)
    rest = s.str.replace(r"^\d+-", "")
    parts = rest.str.split(":")
    n = parts.list.len()
    last = parts.list.get(-1, null_on_oob=True).cast(pl.Float64, strict=False)
    mid = parts.list.get(-2, null_on_oob=True).cast(pl.Float64, strict=False).fill_null(0)
    hrs = pl.when(n >= 3).then(
        parts.list.get(-3, null_on_oob=True).cast(pl.Float64, strict=False)
    ).otherwise(0)
    return days * 86400 + hrs * 3600 + mid * 60 + last

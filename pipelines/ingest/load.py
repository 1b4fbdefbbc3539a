"""Load a validated pilot into the warehouse's staging tables, in one transaction.

The pilot's rows are replaced as a whole (delete, then insert), so re-ingesting the same files
gives the same contents, and a run that dies midway rolls back to the warehouse as it was.
A source whose files cannot be read fails alone: it is reported, recorded in quarantine, and
the other sources still land.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.config import PilotConfig, Source
from pipelines.ingest.base import LINE, MAX_VALUE_CHARS, Parsed, SourceError
from pipelines.ingest.canonical import read_canonical_source
from pipelines.warehouse import ensure_schema
from schemas import FrameSchemaError, QuarantineSchema, validate_frame

Adapter = Callable[[Path, Source], Parsed]
# Source kind -> adapter reading one file. Later adapters register here.
ADAPTERS: dict[str, Adapter] = {"canonical": read_canonical_source}

DATA_TABLES = ("requests", "jobs", "samples")
PILOT_TABLES = DATA_TABLES + (
    "quarantine",
    "ingest_log",
    "pilots",
    "phases",
    "sla_targets",
    "pilot_scope",
    "thresholds",
)
# Errors that mean "this input cannot be read", as opposed to a bug in the pipeline.
INPUT_ERRORS = (SourceError, FrameSchemaError, pl.exceptions.PolarsError, OSError)


@dataclass(frozen=True)
class FileResult:
    source_index: int
    kind: str
    table: str
    file: str  # relative to the pilot folder
    rows_in: int
    rows_stored: int
    rows_quarantined: int
    ignored_columns: tuple[str, ...] = ()


@dataclass
class IngestSummary:
    pilot: str
    files: list[FileResult] = field(default_factory=list)
    failed_sources: list[tuple[int, str, str]] = field(default_factory=list)  # index, file, why

    @property
    def rows_stored(self) -> int:
        return sum(f.rows_stored for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)


def ingest_pilot(con: duckdb.DuckDBPyConnection, cfg: PilotConfig) -> IngestSummary:
    """Replace every staging row of `cfg.pilot` with what its pilot.yaml and sources hold."""
    ensure_schema(con)
    con.execute("BEGIN TRANSACTION")
    try:
        summary = _ingest(con, cfg)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return summary


def _ingest(con: duckdb.DuckDBPyConnection, cfg: PilotConfig) -> IngestSummary:
    for t in PILOT_TABLES:
        con.execute(f"DELETE FROM {t} WHERE pilot = ?", [cfg.pilot])
    _write_config(con, cfg)
    summary = IngestSummary(cfg.pilot)
    for i, src in enumerate(cfg.sources):
        adapter = ADAPTERS.get(src.kind)
        files = cfg.source_files(i)
        if adapter is None or not files:
            reason = (
                f"source kind {src.kind!r} is not supported yet"
                if adapter is None
                else f"no file matches {src.path!r}"
            )
            _fail(con, cfg, summary, i, src.path, reason)
            continue
        for path in files:
            rel = path.relative_to(cfg.root).as_posix()
            try:
                digest = _sha256(path)
                parsed = adapter(path, src)
                good, failures = validate_frame(parsed.table, parsed.frame)
            except INPUT_ERRORS as e:
                _fail(con, cfg, summary, i, rel, str(e) or type(e).__name__)
                continue
            summary.files.append(_store(con, cfg, i, rel, digest, parsed, good, failures))
    return summary


def _store(
    con: duckdb.DuckDBPyConnection,
    cfg: PilotConfig,
    i: int,
    rel: str,
    digest: tuple[str, int],
    parsed: Parsed,
    good: pl.DataFrame,
    failures: pl.DataFrame,
) -> FileResult:
    src = cfg.sources[i]
    lines = parsed.frame.get_column(LINE)
    rejects = pl.concat(
        [
            parsed.rejects,
            failures.select(
                lines.gather(failures.get_column("row")).alias("line"),
                "field",
                "reason",
                pl.col("value").str.slice(0, MAX_VALUE_CHARS),
            ),
        ]
    )
    stored, quarantined = good.height, rejects.get_column("line").n_unique()
    if parsed.rows_in != stored + quarantined:  # never silently lose a row
        raise AssertionError(
            f"{rel}: rows in {parsed.rows_in} != stored {stored} + quarantined {quarantined}"
        )
    _insert_frame(con, parsed.table, good.drop(LINE).with_columns(pl.lit(cfg.pilot).alias("pilot")))
    _insert_frame(con, "quarantine", _quarantine_rows(cfg, i, rel, rejects))
    con.execute(
        "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [cfg.pilot, i, src.kind, parsed.table, rel, *digest, parsed.rows_in, stored,
         quarantined, _now()],
    )  # fmt: skip
    return FileResult(
        i, src.kind, parsed.table, rel, parsed.rows_in, stored, quarantined,
        tuple(parsed.ignored_columns),
    )  # fmt: skip


def _insert_frame(con: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame) -> None:
    """Bulk insert by column name through DuckDB's Arrow scan (no per-row Python)."""
    if df.height == 0:
        return
    con.register("__stage", df)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM __stage")
    finally:
        con.unregister("__stage")


def _quarantine_rows(cfg: PilotConfig, i: int, file: str, rejects: pl.DataFrame) -> pl.DataFrame:
    src = cfg.sources[i]
    rows = rejects.with_columns(
        pl.lit(cfg.pilot).alias("pilot"),
        pl.lit(i, dtype=pl.Int32).alias("source_index"),
        pl.lit(src.kind).alias("source_kind"),
        pl.lit(src.table, dtype=pl.String).alias("target_table"),
        pl.lit(file).alias("file"),
    )
    return QuarantineSchema.validate(rows)  # a malformed quarantine entry is our bug: fail loud


def _fail(
    con: duckdb.DuckDBPyConnection,
    cfg: PilotConfig,
    summary: IngestSummary,
    i: int,
    file: str,
    reason: str,
) -> None:
    """A source (or one file of it) failed as a whole: one quarantine row with no line."""
    summary.failed_sources.append((i, file, reason))
    src = cfg.sources[i]
    con.execute(
        "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, NULL)",
        [cfg.pilot, i, src.kind, src.table, file, reason],
    )


def _write_config(con: duckdb.DuckDBPyConnection, cfg: PilotConfig) -> None:
    p = cfg.pilot
    con.execute(
        "INSERT INTO pilots VALUES (?, ?, ?, ?, ?)",
        [p, cfg.title, cfg.timezone, cfg.to_json(), _now()],
    )
    con.executemany(
        "INSERT INTO phases VALUES (?, ?, ?, ?)",
        [[p, name, ph.start, ph.end] for name, ph in cfg.phases.items()],
    )
    con.executemany(
        "INSERT INTO sla_targets VALUES (?, ?, ?, ?)",
        [[p, cls, s.e2e_ms, s.ttft_ms] for cls, s in cfg.sla.items()],
    )
    s = cfg.scope
    con.execute(
        "INSERT INTO pilot_scope VALUES (?, ?, ?, ?, ?)",
        [p, s.kind, list(s.pools) or None, list(s.priorities) or None, s.share],
    )
    con.executemany(
        "INSERT INTO thresholds VALUES (?, ?, ?)",
        [[p, name, value] for name, value in cfg.thresholds.items()],
    )


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)

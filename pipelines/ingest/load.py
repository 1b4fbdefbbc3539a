"""Load a validated pilot into the warehouse's staging tables, in one transaction.

The pilot's rows are replaced as a whole (delete, then insert), so re-ingesting the same files
gives the same contents, and a run that dies midway rolls back to the warehouse as it was.
A source whose files cannot be read fails alone: it is reported, recorded in quarantine, and
the other sources still land.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

from pipelines.anonymize import COLUMN_KINDS, Anonymizer, secret_from_env
from pipelines.config import LIVE_KINDS, PilotConfig
from pipelines.ingest.base import (
    DEFAULT_CHUNK_ROWS,
    LINE,
    MAX_NOTE_CHARS,
    MAX_VALUE_CHARS,
    TIME_TOLERANCE,
    Adapter,
    AdapterContext,
    Parsed,
    SourceError,
    add_counts,
)
from pipelines.ingest.dedupe import ChunkKeys, RequestKeys, chunk_keys, quarantine_duplicates
from pipelines.ingest.registry import ADAPTERS
from pipelines.ingest.spill import insert_frame
from pipelines.warehouse import ensure_schema
from schemas import FrameSchemaError, QuarantineSchema, validate_frame

__all__ = ["ADAPTERS", "Adapter", "IngestSummary", "ingest_pilot"]

T = TypeVar("T")
CHUNK_ROWS_ENV = "STABILIS_INGEST_CHUNK_ROWS"
INGEST_THREADS = 1  # DuckDB threads while the rows are stored (_few_threads)
GIL_SWITCH_S = 0.001  # Python's thread switch interval while ingesting (_quick_switch)
TOKENIZED_AHEAD = 2  # chunks tokenized ahead of the insert (_ingest_sources)
DATA_TABLES = ("requests", "jobs", "samples", "arrivals")
PILOT_TABLES = DATA_TABLES + (
    "quarantine",
    "ingest_log",
    "dropped_fields",
    "pilots",
    "phases",
    "sla_targets",
    "pilot_scope",
    "thresholds",
)
# Errors that mean "this input cannot be read", as opposed to a bug in the pipeline.
INPUT_ERRORS = (
    SourceError,
    FrameSchemaError,
    pl.exceptions.PolarsError,
    OSError,
    UnicodeError,
    RecursionError,  # absurdly nested JSON
)


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
    dropped: tuple[tuple[str, int], ...] = ()
    warnings: tuple[str, ...] = ()  # about the file as a whole; in ingest_log.warnings


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

    @property
    def warnings(self) -> list[tuple[int, str, str]]:
        """(source index, file, warning) for every file that has some."""
        return [(f.source_index, f.file, w) for f in self.files for w in f.warnings]


def adapter_context(cfg: PilotConfig) -> AdapterContext:
    anchor = min((p.start for p in cfg.phases.values()), default=None)
    return AdapterContext(pilot=cfg.pilot, timezone=cfg.timezone, anchor=anchor,
                          chunk_rows=chunk_rows_from_env())


def time_window(cfg: PilotConfig) -> tuple[datetime, datetime] | None:
    """Times a row may carry: first phase start - TIME_TOLERANCE to last phase end + it."""
    if not cfg.phases:
        return None
    first = min(p.start for p in cfg.phases.values())
    last = max(p.end for p in cfg.phases.values())
    return first - TIME_TOLERANCE, last + TIME_TOLERANCE


def chunk_rows_from_env() -> int:
    """Rows per chunk: STABILIS_INGEST_CHUNK_ROWS, else DEFAULT_CHUNK_ROWS. Peak memory of
    the ingest grows with it (measured at 10 M attempts: 200 k rows -> 1.1 GiB peak RSS,
    500 k -> 1.2 GiB, 1 M -> 1.5 GiB) while the time barely changes."""
    raw = os.environ.get(CHUNK_ROWS_ENV, "").strip()
    if not raw:
        return DEFAULT_CHUNK_ROWS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{CHUNK_ROWS_ENV}={raw!r}: expected a positive number of rows")
    return int(raw)


def ingest_pilot(
    con: duckdb.DuckDBPyConnection, cfg: PilotConfig, anonymizer: Anonymizer | None = None
) -> IngestSummary:
    """Replace every staging row of `cfg.pilot` with what its pilot.yaml and sources hold.

    Identifiers are tokenized with the pilot's secret before anything is written; without the
    secret nothing is read (AnonymizationError)."""
    anon = anonymizer or Anonymizer(secret_from_env(cfg.anonymization.secret_env))
    ensure_schema(con)
    # outside the transaction: restored after a rollback too
    with _few_threads(con), _quick_switch():
        con.execute("BEGIN TRANSACTION")
        try:
            summary = _ingest(con, cfg, anon)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return summary


def _ingest(con: duckdb.DuckDBPyConnection, cfg: PilotConfig, anon: Anonymizer) -> IngestSummary:
    for t in PILOT_TABLES:
        con.execute(f"DELETE FROM {t} WHERE pilot = ?", [cfg.pilot])
    _write_config(con, cfg, anon)
    summary = IngestSummary(cfg.pilot)
    keys = RequestKeys(con)
    try:
        _ingest_sources(con, cfg, anon, summary, keys)
        _drop_duplicates(con, cfg, summary, keys)
    finally:
        keys.discard()
    return summary


def _ingest_sources(con: duckdb.DuckDBPyConnection, cfg: PilotConfig, anon: Anonymizer,
                    summary: IngestSummary, keys: RequestKeys) -> None:
    ctx = adapter_context(cfg)
    window = time_window(cfg)
    readable: list[tuple[int, list[Path]]] = []
    for i, src in enumerate(cfg.sources):
        adapter = ADAPTERS.get(src.kind)
        files = cfg.source_files(i)
        if adapter is None or not files:
            reason = (
                f"source kind {src.kind!r} is not supported yet"
                if adapter is None
                else f"no snapshot in {src.path}/ yet: run `stabilis pull {cfg.pilot}`"
                if src.kind in LIVE_KINDS
                else f"no file matches {src.path!r}"
            )
            _fail(con, cfg, summary, i, src.path, reason)
            continue
        readable.append((i, files))
    # Request sources last: their ids are the costly hashing, and the other sources' inserts
    # (cheap to tokenize) then run beside the first request chunks' hashing instead of alone
    # at the end. Each table's sources keep their order, so its rows do too.
    readable.sort(key=lambda s: cfg.sources[s[0]].table == "requests")
    # A three-stage pipeline over chunks, one for all sources (it never drains between
    # them): one worker reads and checks chunks (polars, mostly outside the GIL), another
    # tokenizes them (hashlib, holding the GIL) while this thread inserts (DuckDB, outside
    # the GIL). With reading and tokenizing in one worker, that worker was the bottleneck
    # (10 M attempts: ~17 of ~30 CPU s) and the insert waited on it. The tokenizer runs up
    # to TOKENIZED_AHEAD chunks ahead, so an insert slower than its hashing (or a small
    # chunk) does not leave a core idle; at most five chunks are in memory.
    failed: set[tuple[int, str]] = set()  # files taken back while stored: the reader skips them
    with (ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-read") as reader,
          ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-tokenize") as tokenizer):
        events = (e for i, files in readable
                  for e in _read_files(cfg, i, files, ctx, window, failed))
        tokenized = _tokenize(cfg.pilot, anon, _read_ahead(events, reader))
        _store_files(con, cfg, _read_ahead(tokenized, tokenizer, TOKENIZED_AHEAD), summary,
                     keys, failed)
    # the summary in source order, as the sources are listed
    summary.files.sort(key=lambda f: f.source_index)
    summary.failed_sources.sort(key=lambda f: f[0])


@contextlib.contextmanager
def _few_threads(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB on INGEST_THREADS threads while the pilot's rows are stored and checked for
    duplicates, its setting restored after (closing's checkpoint runs on them all). The
    reader and tokenizer threads keep the other core busy: a second DuckDB thread only
    contends with them (10 M attempts: the inserts took ~40 % more CPU on two threads, and
    no less wall time; the duplicate check ~40 % more)."""
    row = con.execute("SELECT current_setting('threads')").fetchone()
    before = int(row[0]) if row else 0
    if before <= INGEST_THREADS:
        yield
        return
    con.execute(f"SET threads = {INGEST_THREADS}")
    try:
        yield
    finally:
        con.execute(f"SET threads = {before}")


@contextlib.contextmanager
def _quick_switch() -> Iterator[None]:
    """Python's thread switch interval at GIL_SWITCH_S while ingesting, restored after. The
    tokenizer holds the GIL through its hashing loop; a thread coming back from polars or
    DuckDB (which run without it) waits for it up to the interval, 5 ms by default, and the
    reader's checks and the main thread's inserts come back from them many times a chunk."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, GIL_SWITCH_S))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _read_ahead(items: Iterator[T], worker: ThreadPoolExecutor, depth: int = 1) -> Iterator[T]:
    """`items`, each made in `worker` (one thread) while the caller uses the ones before, up
    to `depth` made ahead. An error raised making an item is raised here, where the item was
    expected."""
    end = object()
    ahead = collections.deque(worker.submit(next, items, end) for _ in range(depth))
    try:
        while (item := ahead.popleft().result()) is not end:
            ahead.append(worker.submit(next, items, end))
            yield item
    finally:
        # the caller stopped early (an error): let the worker finish before anything goes on
        for f in ahead:
            if not f.cancel():
                with contextlib.suppress(Exception):
                    f.result()


Event = tuple[int, str, tuple[str, int] | None, "_Chunk | Exception | None"]


def _read_files(cfg: PilotConfig, i: int, files: list[Path], ctx: AdapterContext,
                window: tuple[datetime, datetime] | None, failed: set[tuple[int, str]],
                ) -> Iterator[Event]:
    """Source `i`'s files read and checked, as (i, file, its digest, a chunk to tokenize
    (`_tokenize`) or the input error that stopped the file; None for a file without rows).
    Runs in the reader thread (no warehouse access), ahead of `_store_files`. A file ends
    where the next one's events begin, so the next file is read while one's last chunk is
    stored."""
    src = cfg.sources[i]
    adapter = ADAPTERS[src.kind]
    for path in files:
        rel = path.relative_to(cfg.root).as_posix()
        digest, chunks = None, 0
        try:
            digest = _sha256(path)
            result = adapter(path, src, ctx)
            for parsed in [result] if isinstance(result, Parsed) else result:
                if (i, rel) in failed:  # taken back while stored: the rest is not read
                    break
                chunk = _prepare(cfg, i, rel, window, parsed)
                del parsed  # the raw chunk goes while the next one is read
                chunks += 1
                yield i, rel, digest, chunk
        except INPUT_ERRORS as e:
            yield i, rel, digest, e
            continue
        if not chunks:
            yield i, rel, digest, None


def _tokenize(pilot: str, anon: Anonymizer, events: Iterator[Event]) -> Iterator[Event]:
    """`events` with each chunk's rows tokenized and given the pilot: the rows `_store_files`
    stores. Runs in the tokenizer thread. An input error tokenizing a chunk stops its file
    like a read error: the error is passed on and the file's later chunks are dropped."""
    stopped: tuple[int, str] | None = None  # the file whose tokenizing failed
    for i, rel, digest, item in events:
        if (i, rel) == stopped:
            continue
        if isinstance(item, _Chunk):
            try:
                keys = None
                if item.table == "requests" and item.rows.height:
                    # the keys of the pilot's duplicate check (dedupe.py), from the token
                    # numbers made with the tokens
                    rows, values = anon.frame_values(item.rows, "request_id")
                    keys = chunk_keys(values, rows.get_column("attempt").to_numpy(),
                                      rows.get_column(LINE).to_numpy())
                else:
                    rows = anon.frame(item.rows)
                rows = rows.with_columns(pl.lit(pilot).alias("pilot"))
            except INPUT_ERRORS as e:
                stopped = i, rel
                yield i, rel, digest, e
                continue
            item = dataclasses.replace(item, rows=rows, keys=keys)
        yield i, rel, digest, item


def _store_files(con: duckdb.DuckDBPyConnection, cfg: PilotConfig, events: Iterator[Event],
                 summary: IngestSummary, keys: RequestKeys, failed: set[tuple[int, str]]
                 ) -> None:
    """Store `_read_files`' events in order: a file's chunks, then its ingest_log row; a file
    that fails (reading, or storing a chunk) is taken back and quarantined as a whole."""
    said: dict[int, set[str]] = {}  # a warning is given once per source, not once per file
    writer: _FileWriter | None = None
    digest: tuple[str, int] | None = None

    def store(step: Callable[[], object]) -> None:
        assert writer is not None
        if (writer.i, writer.rel) in failed:
            return
        try:
            step()
        except INPUT_ERRORS as e:
            # no partial file: its rows are the last appended, so taken back before the
            # failure's own quarantine row
            writer.abandon()
            failed.add((writer.i, writer.rel))
            _fail(con, cfg, summary, writer.i, writer.rel, _reason(e))

    def finish() -> None:
        assert writer is not None and digest is not None
        summary.files.append(writer.finish(digest))

    try:
        for i, rel, file_digest, item in events:
            if writer is None or (writer.i, writer.rel) != (i, rel):
                if writer is not None:
                    store(finish)  # the file's events are over
                writer = _FileWriter(con, cfg, i, rel, keys, said.setdefault(i, set()))
                digest = file_digest
            if isinstance(item, Exception):
                store(functools.partial(_raise, item))  # a worker's error, as if raised here
            elif item is not None:
                store(functools.partial(writer.add, item))
        if writer is not None:
            store(finish)
    finally:
        # whatever else ended the file (a bug, an interrupt) rolls the whole run back: only
        # its parked keys are left to delete
        if writer is not None:
            writer.forget()


def _raise(e: Exception) -> None:
    raise e


def _drop_duplicates(con: duckdb.DuckDBPyConnection, cfg: PilotConfig, summary: IngestSummary,
                     keys: RequestKeys) -> None:
    """Quarantine the pilot's duplicate attempts (dedupe.py) and move them from stored to
    quarantined in the files' ingest_log rows and results."""
    for seq, n in quarantine_duplicates(con, cfg.pilot, keys).items():
        i, _, _, rel = keys.files[seq]
        con.execute(
            "UPDATE ingest_log SET rows_stored = rows_stored - $n, "
            "rows_quarantined = rows_quarantined + $n "
            "WHERE pilot = $pilot AND source_index = $i AND file = $file",
            {"n": n, "pilot": cfg.pilot, "i": i, "file": rel},
        )
        summary.files = [
            dataclasses.replace(f, rows_stored=f.rows_stored - n,
                                rows_quarantined=f.rows_quarantined + n)
            if (f.source_index, f.file) == (i, rel) else f
            for f in summary.files
        ]


def _reason(e: BaseException) -> str:
    msg = str(e).strip() or type(e).__name__
    return msg.splitlines()[0][:500] if len(msg) > 500 else msg


@dataclass(frozen=True)
class _Chunk:
    """One chunk checked and counted (`_prepare`), then tokenized (`_tokenize`)."""

    table: str
    rows: pl.DataFrame  # the good rows with LINE; tokenized and with pilot once `_tokenize`d
    rejects: pl.DataFrame  # its quarantine rows
    rows_in: int
    stored: int
    quarantined: int
    ignored_columns: list[str]
    dropped: dict[str, int]
    notes: list[str]
    keys: ChunkKeys | None = None  # a request chunk's keys, once `_tokenize`d


def _prepare(cfg: PilotConfig, i: int, rel: str,
             window: tuple[datetime, datetime] | None, parsed: Parsed) -> _Chunk:
    """Validate one chunk of file `rel` and count its records; no warehouse access (it runs
    in the reader's thread). Its rejects hold no identifier; its rows are tokenized next."""
    good, failures = validate_frame(parsed.table, parsed.frame, window)
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
    bad_lines = rejects.get_column("line").drop_nulls().unique()
    # A record is stored when some row of it landed and nothing of it was refused; a record
    # may give several rows (nvidia-smi: one line, many series).
    stored = (
        good.get_column(LINE).filter(~good.get_column(LINE).is_in(bad_lines.implode()))
        .n_unique()
    )
    quarantined = rejects.get_column("line").n_unique()
    if parsed.rows_in != stored + quarantined:  # never silently lose a row
        raise AssertionError(
            f"{rel}: rows in {parsed.rows_in} != stored {stored} + quarantined {quarantined}"
        )
    return _Chunk(
        table=parsed.table,
        rows=good,
        rejects=(_quarantine_rows(cfg, i, rel, _blank_identifiers(rejects)) if rejects.height
                 else rejects),
        rows_in=parsed.rows_in, stored=stored, quarantined=quarantined,
        ignored_columns=parsed.ignored_columns, dropped=parsed.dropped,
        notes=[n[:MAX_NOTE_CHARS] for n in parsed.notes],
    )


class _FileWriter:
    """Stores one file's chunks as they are read, each straight into its table, so memory
    holds a few chunks (this one and those read and tokenized ahead, TOKENIZED_AHEAD) whatever
    the file's size. DuckDB
    has no savepoints inside the pilot's transaction, so a file that fails midway is taken
    back by hand (`abandon`): its rows are the last ones this run appended to their tables,
    deleted by rowid (DuckDB numbers the rows a transaction appends in order), and its
    parked request keys are dropped."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, cfg: PilotConfig, i: int, rel: str,
        keys: RequestKeys, said: set[str] | None = None,
    ) -> None:
        self.con, self.cfg, self.i, self.rel, self.keys = con, cfg, i, rel, keys
        self.table: str | None = None
        self.rows_in = self.stored = self.quarantined = 0
        self.ignored: list[str] = []
        self.dropped: dict[str, int] = {}
        self.said = said if said is not None else set()  # warnings given by the source so far
        self.notes: list[str] = []
        self.appended: dict[str, int] = {}  # rows stored per table, until the file finishes
        self.key_seq: int | None = None  # the file's parked request keys (RequestKeys)

    def add(self, chunk: _Chunk) -> None:
        self.table = chunk.table
        self.rows_in += chunk.rows_in
        self.stored += chunk.stored
        self.quarantined += chunk.quarantined
        self.ignored += [c for c in chunk.ignored_columns if c not in self.ignored]
        add_counts(self.dropped, chunk.dropped)
        self.notes += [n for n in chunk.notes if n not in self.notes]
        if self.table == "requests" and chunk.rows.height:
            # tokenized keys, with their line, for the pilot's duplicate check (dedupe.py)
            assert chunk.keys is not None, "a request chunk stored before it was tokenized"
            if self.key_seq is None:
                self.key_seq = self.keys.start(self._where())
            self.keys.add(self.key_seq, chunk.keys)
        self._append(self.table, chunk.rows.drop(LINE))
        if chunk.rejects.height:
            self._append("quarantine", chunk.rejects)

    def _append(self, table: str, rows: pl.DataFrame) -> None:
        insert_frame(self.con, table, rows)
        self.appended[table] = self.appended.get(table, 0) + rows.height

    def finish(self, digest: tuple[str, int]) -> FileResult:
        table = self.table or "?"
        self.appended, self.key_seq = {}, None  # stored for good: nothing to take back
        notes = [n for n in self.notes if n not in self.said]
        self.said.update(notes)
        if self.dropped:
            self.con.executemany(
                "INSERT INTO dropped_fields VALUES (?, ?, ?, ?, ?)",
                [[self.cfg.pilot, self.i, self.rel, f, n] for f, n in sorted(self.dropped.items())],
            )
        src = self.cfg.sources[self.i]
        self.con.execute(
            "INSERT INTO ingest_log (pilot, source_index, source_kind, target_table, file, "
            "sha256, bytes, rows_in, rows_stored, rows_quarantined, ingested_at, warnings) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [self.cfg.pilot, self.i, src.kind, table, self.rel, *digest, self.rows_in,
             self.stored, self.quarantined, _now(), notes],
        )  # fmt: skip
        return FileResult(
            self.i, src.kind, table, self.rel, self.rows_in, self.stored, self.quarantined,
            tuple(self.ignored), tuple(sorted(self.dropped.items())), tuple(notes),
        )  # fmt: skip

    def _where(self) -> tuple[int, str, str | None, str]:
        """The quarantine row's constants for this file: source index, kind, table, file."""
        src = self.cfg.sources[self.i]
        return self.i, src.kind, src.table, self.rel

    def abandon(self) -> None:
        """Take back every row of the file stored so far (idempotent)."""
        for table, n in self.appended.items():
            if n:
                self.con.execute(
                    f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
                    "WHERE pilot = ? ORDER BY rowid DESC LIMIT ?)", [self.cfg.pilot, n])
        self.forget()

    def forget(self) -> None:
        """Drop what the file parked, without touching the tables (idempotent)."""
        self.appended = {}
        if self.key_seq is not None:
            self.keys.drop(self.key_seq)
            self.key_seq = None


def _blank_identifiers(rejects: pl.DataFrame) -> pl.DataFrame:
    # Adapters already blank identifier values; this is the belt to their braces.
    from schemas.common import IDENTIFIER_COLUMNS

    return rejects.with_columns(
        pl.when(pl.col("field").is_in(list(IDENTIFIER_COLUMNS)))
        .then(None)
        .otherwise(pl.col("value"))
        .alias("value")
    )


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


def stored_config_json(cfg: PilotConfig, anon: Anonymizer) -> str:
    """pilot.yaml as stored in `pilots`: an identifier given as a source option (a node
    for a single-host nvidia-smi log, a `constants: {node: ..}` mapping) is tokenized like
    the rows it fills, so the config never carries a raw identifier either."""
    doc = json.loads(cfg.to_json())
    for src in doc["sources"]:
        opts = src.get("options") or {}
        for mapping in (opts, opts.get("constants") or {}):
            if not isinstance(mapping, dict):
                continue
            for key, value in mapping.items():
                if key in COLUMN_KINDS and isinstance(value, str | int):
                    mapping[key] = anon.token(COLUMN_KINDS[key], str(value))
    return json.dumps(doc, sort_keys=True, default=str)


def _write_config(con: duckdb.DuckDBPyConnection, cfg: PilotConfig, anon: Anonymizer) -> None:
    p = cfg.pilot
    con.execute(
        "INSERT INTO pilots VALUES (?, ?, ?, ?, ?)",
        [p, cfg.title, cfg.timezone, stored_config_json(cfg, anon), _now()],
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

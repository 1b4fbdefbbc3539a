"""The floor of a SQL stage (or model): one DuckDB pass over the columns it reads.

What a group of models reads: every table it depends on that it does not build itself
(pipelines/sql_models.py deps), restricted to the columns whose names occur in the group's
SQL text (a word match: a name the SQL uses for another table's column counts too, which can
only make the floor larger and the ratio smaller). The floor reads each such table once, in
one query that aggregates every one of those columns (sum of numbers, max of text and times,
count of anything else), so each value is read and touched once. Each query runs on a fresh
connection (a cold DuckDB buffer pool, as each pipeline stage has in its own process).

The ingest's floor is one DuckDB pass over every column of its landing Parquet files.

A model also writes its table, which no read pass pays for: DuckDB 1.5 spends ~0.8 CPU s per
10 M values writing a VARCHAR column (any string, a constant too) and ~0.2-0.4 s for a number.
So beside the issue's read floor the suite measures each model's *write floor*: copying the
model's own table (its rows for the pilot, every column) into a fresh table of a scratch
database file with the warehouse's settings (`write_floors`). Read floor + write floor is the
least a model that materializes its table can cost; the ratio to it says how much of a
model's time is its query rather than its output.
"""

from __future__ import annotations

import re
import resource
import time
from pathlib import Path

import duckdb

WORD = re.compile(r"[a-z_][a-z0-9_]*")
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL",
           "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


def _agg(name: str, dtype: str) -> str:
    col = '"' + name.replace('"', '""') + '"'
    if dtype.startswith(NUMERIC):
        return f"sum({col})"
    if dtype == "BOOLEAN":
        return f"count_if({col})"
    if dtype in ("VARCHAR", "TIMESTAMP", "DATE", "TIMESTAMP WITH TIME ZONE"):
        return f"max({col})"
    return f"count({col})"


def reads(con: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, type)] that the models `names` read (see the module doc)."""
    from pipelines.sql_models import BY_NAME

    models = [BY_NAME[n] for n in names]
    built = set(names)
    words = set(WORD.findall(" ".join(m.sql() for m in models).lower()))
    out: dict[str, list[tuple[str, str]]] = {}
    for table in sorted({d for m in models for d in m.deps} - built):
        cols = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()
        used = [(c, t) for c, t in cols if c.lower() in words and c != "pilot"]
        if used:
            out[table] = used
    return out


def floor_queries(con: duckdb.DuckDBPyConnection, names: list[str]) -> list[str]:
    qs = []
    for table, cols in reads(con, names).items():
        has_pilot = con.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = ? "
            "AND column_name = 'pilot'", [table]).fetchone()[0]
        where = " WHERE pilot = $pilot" if has_pilot else ""
        aggs = ", ".join(_agg(c, t) for c, t in cols)
        qs.append(f'SELECT count(*), {aggs} FROM "{table}"{where}')
    return qs


def parquet_floor_queries(pilot_dir: Path) -> list[str]:
    """One pass over every column of every landing Parquet file, one query per folder."""
    qs = []
    for sub in sorted(p for p in pilot_dir.iterdir() if p.is_dir()):
        files = sorted(str(f) for f in sub.rglob("*.parquet"))
        if not files:
            continue
        con = duckdb.connect()
        cols = con.execute("DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)",
                           [files]).fetchall()
        con.close()
        aggs = ", ".join(_agg(c, t) for c, t, *_ in cols)
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        qs.append(f"SELECT count(*), {aggs} FROM read_parquet([{listed}], "
                  "hive_partitioning = false)")
    return qs


def time_queries(db: Path, pilot: str, queries: list[str]) -> tuple[float, float]:
    """(wall s, cpu s) of running `queries`, each on a fresh connection to `db`."""
    from pipelines.warehouse import connect

    wall = cpu = 0.0
    for q in queries:
        con = connect(db, read_only=True)
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        con.execute(q, {"pilot": pilot} if "$pilot" in q else {}).fetchall()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        wall += time.perf_counter() - t0
        cpu += r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
        con.close()
    return round(wall, 3), round(cpu, 3)


def write_floors(db: Path, pilot: str, tables: list[str], scratch: Path) -> dict[str, list[float]]:
    """table -> [wall s, cpu s] of writing the pilot's rows of `table` (read from `db`) as a
    new table in the database file `scratch` (created with the warehouse's settings, deleted
    after)."""
    from pipelines.warehouse import connect

    out: dict[str, list[float]] = {}
    con = connect(scratch)
    try:
        path = str(db).replace("'", "''")
        con.execute(f"ATTACH '{path}' AS src (READ_ONLY)")
        have = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'src'"
        ).fetchall()}
        for t in tables:
            if t not in have:
                continue
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            con.execute(f'CREATE OR REPLACE TABLE w AS SELECT * FROM src."{t}" '
                        "WHERE pilot = $pilot", {"pilot": pilot})
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            out[t] = [round(time.perf_counter() - t0, 3),
                      round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 3)]
            con.execute("DROP TABLE w")
    finally:
        con.close()
        for f in (scratch, scratch.with_name(scratch.name + ".wal")):
            f.unlink(missing_ok=True)
    return out

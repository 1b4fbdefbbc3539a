"""Derived tables built from `.sql` files: one name for the file, the table and the asset.

Each file under sql/<layer>/<name>.sql is a SELECT over the warehouse parameterised by
`$pilot`. Building it for a pilot replaces that pilot's rows in table <name> inside one
transaction, so a failed build leaves the table as it was and re-runs are idempotent.
A model marked `view` is a SELECT over other models' tables without `$pilot`: building it
(re)defines view <name>, which serves every pilot and costs no write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.engine.load import parquet_select
from pipelines.metric_catalog import CATALOG
from pipelines.warehouse import SQL_DIR


@dataclass(frozen=True)
class SqlModel:
    name: str
    layer: str  # intermediate | metrics | topology
    deps: tuple[str, ...]  # tables read (staging tables included)
    view: bool = False  # a view over `deps` for every pilot instead of a per-pilot table

    @property
    def path(self) -> Path:
        return SQL_DIR / self.layer / f"{self.name}.sql"

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


# Ordered so that every model comes after the tables it reads.
MODELS: tuple[SqlModel, ...] = (
    SqlModel("int_thresholds", "intermediate", ("thresholds",)),
    SqlModel(
        "int_retried_requests", "intermediate", ("requests", "phases", "pilot_scope", "sla_targets")
    ),
    SqlModel(
        "int_attempts", "intermediate",
        ("requests", "int_retried_requests", "phases", "pilot_scope", "sla_targets"),
    ),
    # every logical request: the lone first attempts of int_attempts and int_retried_requests
    SqlModel(
        "int_logical_requests", "intermediate", ("int_attempts", "int_retried_requests"),
        view=True,
    ),
    SqlModel("int_gpu_samples", "intermediate", ("samples", "phases", "pilot_scope")),
    SqlModel(
        "burst_windows", "intermediate", ("int_attempts", "arrivals", "int_thresholds", "phases")
    ),
    SqlModel("burst_episodes", "topology", ("burst_windows", "int_thresholds")),
    SqlModel(
        "latency_histogram_quantiles", "metrics", ("samples", "phases", "pilot_scope")
    ),
    SqlModel(
        "series_metrics", "metrics",
        ("samples", "arrivals", "phases", "pilot_scope", "latency_histogram_quantiles"),
    ),
    SqlModel("job_timeline", "topology", ("jobs", "phases")),
    # exact headline quantiles by histogram selection, in memory the buffer manager bounds
    SqlModel(
        "int_quantile_ranks", "intermediate",
        ("int_logical_requests", "int_attempts", "burst_windows", "int_thresholds"),
    ),
    SqlModel(
        "int_headline_quantiles", "intermediate",
        ("int_quantile_ranks", "int_logical_requests", "int_attempts", "burst_windows",
         "int_thresholds"),
    ),
    SqlModel(
        "metrics_headline",
        "metrics",
        (
            "job_timeline",
            "pilot_scope",
            "int_logical_requests",
            "int_attempts",
            "int_headline_quantiles",
            "int_gpu_samples",
            "burst_windows",
            "int_thresholds",
            "phases",
            "latency_histogram_quantiles",
            "series_metrics",
        ),
    ),
    SqlModel("metrics_before_after", "metrics", ("metrics_headline",)),
    SqlModel("metrics_did", "metrics", ("metrics_before_after",)),
    SqlModel(
        "int_pool_minutes",
        "intermediate",
        ("int_attempts", "int_gpu_samples", "samples", "sla_targets", "phases",
         "int_thresholds"),
    ),
    SqlModel(
        "pool_windows", "metrics",
        ("int_attempts", "arrivals", "phases", "burst_windows", "int_pool_minutes"),
    ),
    SqlModel("hidden_idle_map", "topology", ("int_gpu_samples",)),
    SqlModel("energy_latency_windows", "metrics", ("int_gpu_samples", "int_attempts", "phases")),
    # issue #4 analytics: bursts, indices, patterns, topology (sql/<layer>/<name>.sql)
    SqlModel(
        "burst_amplification", "metrics",
        ("burst_episodes", "int_attempts", "int_thresholds"),
    ),
    SqlModel(
        "arrival_burstiness", "metrics",
        ("int_attempts", "arrivals", "phases", "int_thresholds"),
    ),
    SqlModel(
        "idle_overload_states", "topology", ("int_pool_minutes", "int_thresholds")
    ),
    SqlModel("queue_saturation_zones", "topology", ("int_pool_minutes",)),
    SqlModel(
        "int_wave_events", "intermediate",
        ("int_pool_minutes", "burst_episodes", "int_thresholds"),
    ),
    SqlModel("latency_cascade_paths", "topology", ("int_wave_events",)),
    SqlModel("sla_risk_map", "topology", ("int_pool_minutes", "int_thresholds")),
    SqlModel(
        "slot_locking_zones", "topology",
        ("jobs", "int_attempts", "phases", "int_thresholds"),
    ),
    SqlModel(
        "disruption_episodes", "topology",
        ("int_pool_minutes", "burst_episodes", "int_thresholds"),
    ),
    SqlModel("disruption_timeline", "topology", ("disruption_episodes",)),
    SqlModel(
        "indices", "metrics",
        ("metrics_headline", "int_wave_events", "idle_overload_states", "int_pool_minutes",
         "phases", "int_thresholds"),
    ),
    SqlModel(
        "sync_map", "metrics", ("int_pool_minutes", "metrics_headline", "int_thresholds")
    ),
    SqlModel(
        "int_delayed_waits", "intermediate",
        ("jobs", "int_attempts", "int_pool_minutes", "int_thresholds"),
    ),
    SqlModel(
        "int_job_waits", "intermediate",
        ("jobs", "int_attempts", "int_delayed_waits", "int_thresholds"),
    ),
    SqlModel(
        "findings", "metrics",
        ("int_attempts", "jobs", "int_job_waits", "int_delayed_waits", "phases",
         "int_pool_minutes",
         "burst_amplification",
         "idle_overload_states", "queue_saturation_zones", "metrics_headline",
         "int_thresholds"),
    ),
    SqlModel(
        "patterns_tested", "metrics",
        ("findings", "int_attempts", "jobs", "int_gpu_samples", "metrics_headline",
         "int_pool_minutes"),
    ),
    # what each report item could be measured from on this pilot, and what it would need
    SqlModel(
        "measurement_coverage", "metrics",
        ("int_pool_minutes", "arrivals", "samples", "jobs", "sla_targets",
         "int_gpu_samples", "metrics_headline", "patterns_tested"),
    ),
    # every stored identifier value checked for the token form (the report's appendix D)
    SqlModel("identifier_audit", "metrics", ("requests", "samples", "jobs")),
    # rows, spans, inventory and workload mix of the staging tables (the report's section 1)
    SqlModel("staging_inventory", "metrics", ("requests", "samples", "jobs", "arrivals")),
)
BY_NAME: dict[str, SqlModel] = {m.name: m for m in MODELS}


def refresh_metric_catalog(con: duckdb.DuckDBPyConnection) -> None:
    """Mirror pipelines.metric_catalog into the warehouse so SQL can join units from it."""
    con.execute(
        "CREATE OR REPLACE TABLE metric_catalog "
        "(name VARCHAR, label VARCHAR, unit VARCHAR, better VARCHAR, definition VARCHAR)"
    )
    # one INSERT of literals: Python parameter binding would import pandas (see _run)
    rows = ", ".join(
        "(" + ", ".join(_literal(v) for v in (m.name, m.label, m.unit, m.better, m.definition))
        + ")"
        for m in CATALOG
    )
    con.execute(f"INSERT INTO metric_catalog VALUES {rows}")


def _literal(value: str | None) -> str:
    """A SQL string literal (or NULL) for `value`."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _run(con: duckdb.DuckDBPyConnection, sql: str, pilot: str) -> tuple[list, list[tuple]]:
    """(description, rows) of `sql` with `$pilot` bound by SQL PREPARE/EXECUTE, the prepared
    statement the Python client would make: binding a Python parameter imports pandas and
    numpy on first use (about 1.4 s of CPU in every fresh process that only builds models)."""
    if "$pilot" not in sql:
        cur = con.execute(sql)
        return cur.description, cur.fetchall()
    con.execute(f"PREPARE _stabilis_model AS {sql}")
    try:
        cur = con.execute(f"EXECUTE _stabilis_model(pilot := {_literal(pilot)})")
        return cur.description, cur.fetchall()  # read before DEALLOCATE replaces the result
    finally:
        con.execute("DEALLOCATE _stabilis_model")


_PILOT_PARAM = re.compile(r"\$pilot\b")


def _columns(con: duckdb.DuckDBPyConnection, select_sql: str, pilot: str) -> list[tuple[str, str]]:
    """(name, type) of the query's result, from a relation: DuckDB binds it and runs nothing.
    The pilot goes in as a literal here (the names and types do not depend on it). With
    the lookup below, a hand-sized pilot's build_all went from 1.3-1.8 to 1.0-1.4 s (a
    `LIMIT 0` query was planned twice and run; information_schema scanned the catalog)."""
    rel = con.sql(_PILOT_PARAM.sub(_literal(pilot), select_sql))
    return [(n, str(t)) for n, t in zip(rel.columns, rel.types, strict=True)]


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the warehouse's main schema has a table (not a view) named `table`."""
    (tables,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
        f"AND database_name = current_database() AND table_name = {_literal(table)}"
    ).fetchone()
    return bool(tables)


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]] | None:
    """(name, type) of the warehouse's table `table`, None without one. PRAGMA table_info
    is a lookup where information_schema.columns scanned the whole catalog (0.2 against 3 ms
    a model), and it fails on a missing table, which would abort the build's transaction:
    _has_table says first whether there is one."""
    if not _has_table(con, table):
        return None
    rows = con.execute(f"SELECT name, type FROM pragma_table_info({_literal(table)})").fetchall()
    return [(r[0], r[1]) for r in rows] or None


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: a failed build leaves the warehouse as it was."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _pilot_rows(con: duckdb.DuckDBPyConnection, name: str, pilot: str) -> int:
    _, [(rows,)] = _run(con, f'SELECT count(*) FROM "{name}" WHERE pilot = $pilot', pilot)
    return int(rows)


def build_model(
    con: duckdb.DuckDBPyConnection, model: SqlModel | str, pilot: str,
    *, parquet: Path | None = None,
) -> int:
    """Replace `pilot`'s rows of the model's table; returns the pilot's row count.

    With `parquet`, the rows are that result of the same SQL run elsewhere (Spark: a file
    or a folder of part files) instead of the SQL run here; the rest is unchanged."""
    m = BY_NAME[model] if isinstance(model, str) else model
    select_sql = m.sql().strip().rstrip(";")
    if m.view:
        return _build_view(con, m, select_sql, pilot)
    with _transaction(con):
        if m.layer == "metrics":
            refresh_metric_catalog(con)  # units come from the Python catalog
        wanted = _columns(con, select_sql, pilot)
        existing = _table_columns(con, m.name)
        if existing is not None and existing != wanted:
            # The SQL file changed shape: derived rows of every pilot are rebuildable.
            con.execute(f'DROP TABLE "{m.name}"')
            existing = None
        if existing is None:
            cols = ", ".join(f'"{n}" {t}' for n, t in wanted)
            con.execute(f'CREATE TABLE "{m.name}" ({cols})')
        _run(con, f'DELETE FROM "{m.name}" WHERE pilot = $pilot', pilot)
        if parquet is None:
            _run(con, f'INSERT INTO "{m.name}" {select_sql}', pilot)
        else:
            con.execute(f'INSERT INTO "{m.name}" {parquet_select(con, parquet, wanted)}')
        return _pilot_rows(con, m.name, pilot)


def _build_view(con: duckdb.DuckDBPyConnection, m: SqlModel, select_sql: str, pilot: str) -> int:
    """(Re)define view `m.name` (a table of that name from an older version is dropped);
    returns `pilot`'s row count, as build_model does for a table."""
    if "$pilot" in select_sql:
        raise ValueError(f"{m.path}: a view serves every pilot and cannot use $pilot")
    with _transaction(con):
        if _has_table(con, m.name):
            con.execute(f'DROP TABLE "{m.name}"')
        con.execute(f'CREATE OR REPLACE VIEW "{m.name}" AS {select_sql}')
        return _pilot_rows(con, m.name, pilot)


def build_all(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[str, int]:
    """Build every model in dependency order (used by the CLI and tests without Dagster)."""
    return {m.name: build_model(con, m, pilot) for m in MODELS}

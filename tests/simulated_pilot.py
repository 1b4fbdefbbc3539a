"""A simulated pilot written straight into the staging tables (no ingestion), for tests that
need realistic volumes of every canonical table: the what-if tests and the Spark parity test."""

from __future__ import annotations

from datetime import timedelta

import duckdb

from pipelines.config import DEFAULT_THRESHOLDS
from pipelines.demo import DEMO_SLA
from pipelines.simulator import demo_config, simulate
from pipelines.simulator.scenarios import DEMO_TREATMENT_POOLS, demo_validation_start_s
from pipelines.warehouse import ensure_schema


def _insert(con: duckdb.DuckDBPyConnection, table: str, pilot: str, df: object) -> None:
    con.register("__t", df)
    con.execute(f"INSERT INTO {table} BY NAME SELECT *, $p AS pilot FROM __t", {"p": pilot})
    con.unregister("__t")


def write_simulated_pilot(con: duckdb.DuckDBPyConnection, pilot: str, seed: int,
                          scale: float) -> None:
    """The demo simulator's requests, jobs and samples for `pilot`, with the demo's phases,
    SLA targets, treatment scope and the default thresholds."""
    cfg = demo_config(seed, scale)
    res = simulate(cfg)
    ensure_schema(con)
    _insert(con, "requests", pilot, res.requests)
    _insert(con, "jobs", pilot, res.jobs)
    _insert(con, "samples", pilot, res.samples)
    v = cfg.start + timedelta(seconds=demo_validation_start_s(cfg))
    end = cfg.start + timedelta(seconds=cfg.duration_s)
    con.executemany("INSERT INTO phases VALUES (?, ?, ?, ?)",
                    [[pilot, "baseline", cfg.start, v], [pilot, "validation", v, end]])
    con.executemany("INSERT INTO sla_targets VALUES (?, ?, ?, ?)",
                    [[pilot, p, t["e2e_ms"], t.get("ttft_ms")] for p, t in DEMO_SLA.items()])
    con.execute("INSERT INTO pilot_scope VALUES (?, 'pools', ?, NULL, NULL)",
                [pilot, list(DEMO_TREATMENT_POOLS)])
    con.executemany("INSERT INTO thresholds VALUES (?, ?, ?)",
                    [[pilot, k, float(x)] for k, x in DEFAULT_THRESHOLDS.items()])

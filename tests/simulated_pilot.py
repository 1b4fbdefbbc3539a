"""A simulated pilot written straight into the staging tables (no ingestion), for tests that
need realistic volumes of every canonical table: the what-if tests and the Spark parity test.
Besides the simulator's samples it carries what a vLLM exporter would have counted of the
same requests: cumulative e2e-latency and queue-time histogram buckets per pool and minute."""

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
    _insert_histograms(con, pilot)


# vLLM's default bucket bounds for request latency (seconds), +Inf last
BUCKETS_S = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)


def _insert_histograms(con: duckdb.DuckDBPyConnection, pilot: str) -> None:
    """Cumulative bucket counters sampled at the end of every minute, per pool, of the ok
    requests' e2e latency and queue time (observed when a request ends)."""
    les = ", ".join(map(str, BUCKETS_S)) + ", 'Infinity'::DOUBLE"
    con.execute(f"""
    INSERT INTO samples (pilot, ts, series, pool, node, gpu, value, le)
    WITH r AS (
        SELECT pool, epoch_us(end_ts) // 60000000 AS m, f.series, f.v
        FROM requests,
             LATERAL (VALUES
                 ('e2e_latency_s_bucket', (epoch_us(end_ts) - epoch_us(arrival_ts)) / 1e6),
                 ('queue_time_s_bucket', (epoch_us(start_ts) - epoch_us(arrival_ts)) / 1e6)
             ) f(series, v)
        WHERE pilot = $p AND status = 'ok'
    ),
    b AS (SELECT unnest([{les}]) AS le),
    c AS (SELECT r.pool, r.m, r.series, b.le, count(*) AS n FROM r JOIN b ON r.v <= b.le
          GROUP BY ALL),
    grid AS (
        SELECT p.pool, s.series, b.le, unnest(range(t.m0, t.m1 + 1)) AS m
        FROM (SELECT DISTINCT pool FROM r) p,
             (VALUES ('e2e_latency_s_bucket'), ('queue_time_s_bucket')) s(series), b,
             (SELECT min(m) AS m0, max(m) AS m1 FROM r) t
    )
    SELECT $p, make_timestamp((g.m + 1) * 60000000), g.series, g.pool, NULL, NULL,
           sum(coalesce(c.n, 0)) OVER (PARTITION BY g.pool, g.series, g.le ORDER BY g.m),
           g.le
    FROM grid g LEFT JOIN c USING (pool, series, le, m)
    """, {"p": pilot})

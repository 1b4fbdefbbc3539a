"""Section 1's rows, spans, inventory and workload mix come from staging_inventory
(sql/metrics/staging_inventory.sql), built in the pipeline; on real DuckDB files."""

from __future__ import annotations

from pathlib import Path

from pipelines.sql_models import build_model
from pipelines.warehouse import connect, ensure_schema
from reports.environment import environment
from reports.model import _Warehouse


def _warehouse(tmp_path: Path, inventory: bool = True) -> _Warehouse:
    con = connect(tmp_path / "w.duckdb")
    ensure_schema(con)
    req = ("INSERT INTO requests (pilot, request_id, attempt, pool, node, gpu, model_class, "
           "priority, arrival_ts, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok')")
    con.executemany(req, [
        ["p", "r1", 0, "a", "n1", "g0", "llm", "P0", "2026-01-01 00:00:00"],
        ["p", "r2", 0, "a", "n1", "g1", "llm", "P1", "2026-01-01 00:10:00"],
        ["p", "r2b", 1, "a", "n1", "g1", "llm", "P1", "2026-01-01 00:11:00"],
        ["p", "r3", 0, "b", "n2", "g0", "vision", "P1", "2026-01-01 01:00:00"],
        ["other", "x", 0, "z", "nz", "gz", "llm", "P3", "2030-01-01 00:00:00"],
    ])
    con.execute("INSERT INTO samples (pilot, ts, series, value, pool, node, gpu) VALUES "
                "('p', TIMESTAMP '2025-12-31 23:59:00', 'gpu_util', 0.5, 'c', 'n3', 'g0'), "
                "('p', TIMESTAMP '2026-01-01 02:00:00', 'gpu_util', 0.5, 'a', 'n1', 'g0')")
    con.execute("INSERT INTO jobs (pilot, job_id, kind, state, node, pool, submit_ts, end_ts) "
                "VALUES ('p', 'j1', 'batch', 'COMPLETED', 'n4', 'd', "
                "TIMESTAMP '2026-01-01 00:30:00', TIMESTAMP '2026-01-01 03:00:00')")
    con.execute("INSERT INTO arrivals (pilot, ts, source) VALUES "
                "('p', TIMESTAMP '2026-01-01 00:00:01', 'azure'), "
                "('p', TIMESTAMP '2026-01-01 00:00:02', 'azure'), "
                "('p', TIMESTAMP '2026-01-01 00:00:03', 'burstgpt')")
    if inventory:
        build_model(con, "staging_inventory", "p")
    return _Warehouse(con, "p")


def test_inventory_counts_what_the_staging_tables_hold(tmp_path: Path) -> None:
    w = _warehouse(tmp_path)
    rows = {(r[0], r[1]): r[2:] for r in w.con.execute(
        "SELECT item, key, n, n_first, lo, hi FROM staging_inventory WHERE pilot = 'p'"
    ).fetchall()}
    assert rows[("rows", "requests")][:2] == (4, 3)
    assert str(rows[("rows", "requests")][2]) == "2026-01-01 00:00:00"
    assert str(rows[("rows", "jobs")][3]) == "2026-01-01 03:00:00"
    assert rows[("rows", "samples")][0] == 2 and rows[("rows", "arrivals")][0] == 3
    assert {k for (i, k) in rows if i == "pool"} == {"a", "b", "c", "d"}  # other pilot unread
    assert rows[("nodes", "*")][0] == 4  # n1, n2, n3 and the job's n4
    assert rows[("gpus", "*")][0] == 4  # (n1,g0) (n1,g1) (n2,g0) (n3,g0): pairs, not names
    assert rows[("model_class", "llm")][:2] == (3, 2)
    assert rows[("model_class", "vision")][:2] == (1, 1)
    assert rows[("priority", "P1")][:2] == (3, 2)
    assert rows[("arrival_source", "azure")][0] == 2


def test_section_one_reads_the_inventory(tmp_path: Path) -> None:
    env = environment(_warehouse(tmp_path), None)  # type: ignore[arg-type]
    spans = {r[0]: r for r in env.spans.rows}
    assert spans["Requests (per-request rows)"][3] != "no rows"
    assert dict(r[:2] for r in env.table_rows.rows)["requests"] == "4"
    inv = {r[0]: r for r in env.inventory.rows}
    assert inv["Pools"][1:] == ["4", "a, b, c, d"]
    assert inv["GPUs"][1] == "4" and inv["Priority classes"][1:] == ["2", "P0, P1"]
    assert "azure, burstgpt" in inv["Arrivals (trace)"][2]
    assert [r[0] for r in env.mix_priority.rows] == ["P1", "P0"]  # most attempts first
    assert env.mix_priority.rows[0][1:] == ["3", "2", "75.0 %"]


def test_without_the_inventory_section_one_says_not_measured(tmp_path: Path) -> None:
    env = environment(_warehouse(tmp_path, inventory=False), None)  # type: ignore[arg-type]
    spans = {r[0]: r for r in env.spans.rows}
    assert "not measured: needs the staging_inventory table" in spans["Scheduler jobs"][3]
    assert spans["Phases"][3] == "no rows"  # read directly: a small table
    assert dict(r[:2] for r in env.table_rows.rows)["requests"].startswith("not measured")
    assert not env.inventory.rows and "staging_inventory" in env.inventory.empty
    assert not env.mix_class.rows and "staging_inventory" in env.mix_class.empty

"""Detector scoring on a small simulated demo pilot: scores are computed and stored."""

from __future__ import annotations

import duckdb

from pipelines.analytics.scoring import score_pilot
from pipelines.config import load_pilot
from pipelines.demo import generate_demo_pilot
from pipelines.ingest.load import ingest_pilot
from pipelines.sql_models import build_all


def test_scores_are_computed_and_written(tmp_path):
    folder = generate_demo_pilot(tmp_path / "landing", seed=7, scale=0.02)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    cfg = load_pilot(folder)
    ingest_pilot(con, cfg)
    build_all(con, cfg.pilot)
    scores = score_pilot(folder, con)
    names = {s.pattern for s in scores}
    assert {"burst", "batch_scheduling_conflict", "priority_inversion",
            "idle_overload_oscillation"} <= names
    for s in scores:
        assert s.tp >= 0 and s.fp >= 0 and s.fn >= 0
        assert s.precision is None or 0 <= s.precision <= 1
    rows = con.execute("SELECT count(*) FROM detector_scores WHERE pilot = ?",
                       [cfg.pilot]).fetchone()[0]
    assert rows == len(scores)

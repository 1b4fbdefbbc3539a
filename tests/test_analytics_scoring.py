"""Detector scoring: the matching levels and the chance baseline on hand-built frames, and the
whole path (demo ground truth -> warehouse -> detector_scores) on a small simulated pilot."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from pipelines.analytics.scoring import SPECS, score_detector, score_pilot
from pipelines.config import load_pilot
from pipelines.demo import generate_demo_pilot
from pipelines.ingest.load import ingest_pilot
from pipelines.sql_models import build_all

US = 1_000_000
SPAN = (0, 3600 * US)


def frame(rows: list[tuple[str, float, float]]) -> pl.DataFrame:
    return pl.DataFrame({"pool": [r[0] for r in rows],
                         "s": [round(r[1] * US) for r in rows],
                         "e": [round(r[2] * US) for r in rows]},
                        schema={"pool": pl.String, "s": pl.Int64, "e": pl.Int64})


def test_episode_precision_recall_use_one_reference():
    ref = frame([("a", 100, 200), ("a", 1000, 1100), ("b", 500, 600)])
    det = frame([("a", 150, 250), ("a", 2000, 2100), ("b", 590, 650), ("a", 3000, 3010)])
    s = score_detector("x", det, ref, "episode", SPAN, ref.head(0), "ref", 0)
    assert (s.tp, s.fp, s.fn) == (2, 2, 1)
    assert s.precision == pytest.approx(0.5) and s.recall == pytest.approx(2 / 3)
    # the tolerance widens both intervals
    s = score_detector("x", det, ref, "episode", SPAN, ref.head(0), "ref", 60 * US)
    assert s.tp == 2  # 2000 is still 900 s from 1100


def test_dont_care_events_count_in_neither_precision_nor_recall():
    ref = frame([("a", 100, 200)])
    marginal = frame([("a", 1000, 1100)])
    det = frame([("a", 150, 250), ("a", 1050, 1060), ("a", 2000, 2100)])
    s = score_detector("x", det, ref, "episode", SPAN, ref.head(0), "ref", 0, ignore=marginal)
    # the detection of the marginal event is dropped; the one at 2000 stays a false positive
    assert (s.tp, s.fp, s.fn) == (1, 1, 0)
    assert s.precision == pytest.approx(0.5) and s.recall == 1.0
    plain = score_detector("x", det, ref, "episode", SPAN, ref.head(0), "ref", 0)
    assert (plain.tp, plain.fp) == (1, 2)


def test_chance_baseline_is_low_for_a_perfect_detector_of_rare_events():
    ref = frame([("a", t, t + 60) for t in range(0, 3600, 600)])
    s = score_detector("x", ref, ref, "episode", SPAN, ref.head(0), "ref", 0)
    assert s.precision == 1.0 and s.recall == 1.0
    assert s.chance_precision < 0.5 and s.chance_recall < 0.5
    again = score_detector("x", ref, ref, "episode", SPAN, ref.head(0), "ref", 0)
    assert again == s  # seeded: deterministic


def test_job_level_matches_the_same_job_only():
    jobs = frame([("a", t, t + 300) for t in range(0, 3600, 400)])
    ref = jobs[[0, 1]]
    det = jobs[[0, 2]]  # one right, one overlapping nothing in the reference
    s = score_detector("x", det, ref, "job", SPAN, jobs, "ref", 60 * US)
    assert (s.tp, s.fp, s.fn) == (1, 1, 1)
    assert 0 < s.chance_precision < 0.6  # 2 of 9 jobs are conflicts


def test_phase_level_matches_the_unit_holding_the_start():
    units = frame([("a", 0, 1800), ("a", 1800, 3600)])
    det = frame([("a", 0, 1800)])
    s = score_detector("x", det, units[[1]], "phase", SPAN, units, "ref", 0)
    assert (s.tp, s.fp, s.fn) == (0, 1, 1)
    assert s.chance_precision == pytest.approx(0.5, abs=0.3)


def test_phase_level_chance_draws_from_every_pool():
    """A pool flagged in both phases would score 1.0 by chance if moved only within its pool:
    the chance detections are drawn from all the pattern's units."""
    units = frame([(p, a, a + 1800) for p in "abcd" for a in (0, 1800)])
    ref = units.filter(pl.col("pool") == "a")
    s = score_detector("x", ref, ref, "phase", SPAN, units, "ref", 0, shifts=200)
    assert (s.precision, s.recall) == (1.0, 1.0)
    assert s.chance_precision == pytest.approx(0.25, abs=0.06)  # 2 of 8 units are positive


def test_scores_are_computed_and_written(tmp_path):
    folder = generate_demo_pilot(tmp_path / "landing", seed=7, scale=0.02)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    cfg = load_pilot(folder)
    ingest_pilot(con, cfg)
    build_all(con, cfg.pilot)
    scores = score_pilot(folder, con, shifts=3)
    assert [s.pattern for s in scores] == list(SPECS)
    assert len(scores) == 9
    for s in scores:
        assert s.tp >= 0 and s.fp >= 0 and s.fn >= 0
        assert s.level in {"job", "episode", "phase"}
        for v in (s.precision, s.recall, s.chance_precision, s.chance_recall):
            assert v is None or 0 <= v <= 1
    rows = con.execute("SELECT count(*), count(chance_precision) >= 0 FROM detector_scores "
                       "WHERE pilot = ?", [cfg.pilot]).fetchone()
    assert rows[0] == len(scores)

"""Power estimate (reports/power.py): hand-built intervals with known answers, and the table
read from a real metrics_ci in a DuckDB file."""

from __future__ import annotations

import math

import duckdb
import polars as pl
import pytest

from pipelines.statistics import CI_COLUMNS
from reports import power
from reports.sections.common import ci_index

Z = power.Z_ALPHA + power.Z_POWER  # 2.80


def test_se_from_interval_is_width_over_3_92() -> None:
    assert power.se_from_interval(-1.96, 1.96) == pytest.approx(1.0, rel=1e-4)
    assert power.se_from_interval(None, 1.0) is None


def test_interval_twice_as_wide_as_needed_needs_about_four_times_the_blocks() -> None:
    # the baseline is long (its variance share negligible): SE ∝ 1/sqrt(n_v) -> 4× the blocks
    delta = 1.0
    se_now = 2 * power.target_se(delta)
    need = power.required_validation_blocks(se_now, delta, n_baseline=10**9, n_validation=40)
    assert need.status == "blocks"
    assert need.blocks == pytest.approx(160, abs=1)


def test_exact_formula_with_a_finite_baseline() -> None:
    # SE² = k (1/n_b + 1/n_v); n_b = 100, n_v = 50, SE twice the target
    n_b, n_v, delta = 100, 50, 1.0
    se_t = power.target_se(delta)
    k = (2 * se_t) ** 2 / (1 / n_b + 1 / n_v)
    expected = math.ceil(1 / (se_t**2 / k - 1 / n_b))  # 1 / (0.0075 - 0.01) < 0: unreachable
    need = power.required_validation_blocks(2 * se_t, delta, n_b, n_v)
    assert expected < 0 and need.status == "unreachable"
    # 1.2× the target: reachable, and the answer solves the equation
    need = power.required_validation_blocks(1.2 * se_t, delta, n_b, n_v)
    k = (1.2 * se_t) ** 2 / (1 / n_b + 1 / n_v)
    assert need.status == "blocks" and need.blocks is not None
    assert k * (1 / n_b + 1 / need.blocks) <= se_t**2 < k * (1 / n_b + 1 / (need.blocks - 1))


def test_already_detectable_and_unknown() -> None:
    assert power.required_validation_blocks(0.1, 1.0, 40, 40).status == "detectable"
    assert power.required_validation_blocks(None, 1.0, 40, 40).status == "unknown"
    assert power.required_validation_blocks(0.1, 0.0, 40, 40).status == "no_effect"


def test_baseline_limited_is_not_reachable() -> None:
    # equal phases, SE 1.5× the target: even infinite validation leaves SE/√2 = 1.06× target
    se_t = power.target_se(1.0)
    assert power.required_validation_blocks(1.5 * se_t, 1.0, 40, 40).status == "unreachable"


def test_ten_percent_reference_effect() -> None:
    from pipelines.metric_catalog import BY_NAME
    assert power.ten_percent_delta(2.0, BY_NAME["p95_latency_s"]) == pytest.approx(0.2)
    assert power.ten_percent_delta(0.6, BY_NAME["sla_adherence"]) == pytest.approx(0.01)
    assert power.ten_percent_delta(None, BY_NAME["p95_latency_s"]) is None


def _ci_row(segment: str, metric: str, **kw: float | None) -> dict:
    row: dict = dict.fromkeys(CI_COLUMNS)
    row.update(pilot="p", segment=segment, metric=metric, level=0.95, block_s=300.0,
               blocks_baseline=40, blocks_validation=40)
    row.update(kw)
    return row


def test_power_table_from_metrics_ci_in_duckdb(tmp_path) -> None:
    se_t = power.target_se(0.2)  # 10 % of a 2 s P95
    rows = [
        # P95: DiD 0.5 s with SE 0.09 -> observed effect detectable; 10 % (0.2 s) needs
        # SE 0.0714, SE² = k·(2/40) → k = 0.162; n_v = 1/(se_t²/k − 1/40) ≈ 154
        _ci_row("treatment", "p95_latency_s", baseline=2.0, change=-0.6, change_lo=-0.8,
                change_hi=-0.4, did=-0.5, did_lo=-0.5 - 1.96 * 0.09,
                did_hi=-0.5 + 1.96 * 0.09),
        # SLA: DiD +0.2 pp with SE 0.6 pp -> baseline-limited for both effects
        _ci_row("treatment", "sla_adherence", baseline=0.9, change=0.003, change_lo=-0.01,
                change_hi=0.016, did=0.002, did_lo=0.002 - 1.96 * 0.006,
                did_hi=0.002 + 1.96 * 0.006),
        _ci_row("control", "p95_latency_s", baseline=2.1, change=-0.1, change_lo=-0.3,
                change_hi=0.1),
    ]
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    df = pl.DataFrame(rows, schema=CI_COLUMNS)
    con.register("df", df)
    con.execute("CREATE TABLE metrics_ci AS SELECT * FROM df")

    class W:
        pilot = "p"

        def q(self, table: str, sql: str, *params: object):
            return con.execute(sql, [self.pilot, *params]).pl()

    table = power.power_table(ci_index(W()))  # type: ignore[arg-type]
    con.close()
    by = {r[0]: r for r in table.rows}
    assert set(by) == {"P95 latency", "SLA adherence"}  # one scope: treatment, DiD
    p95 = by["P95 latency"]
    assert p95[1] == "DiD, treatment"
    assert p95[4] == "already detectable"
    n_v = math.ceil(1 / (se_t**2 / (0.09**2 / (2 / 40)) - 1 / 40))
    assert p95[5].startswith("200 ms: ") and f"({n_v} blocks" in p95[5]
    sla = by["SLA adherence"]
    assert sla[3] == "0.6 pp"
    assert sla[4] == sla[5].removeprefix("1 pp: ") == \
        "not reachable by lengthening validation alone"
    assert table.basis == "measured, approximate"
    assert "40 blocks of 300 s" in table.note

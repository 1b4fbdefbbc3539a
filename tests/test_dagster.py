"""The Dagster definitions load, and one small simulated pilot runs end to end in-process."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import dagster as dg
import duckdb
import pytest
import weasyprint
from dagster_duckdb import DuckDBResource
from typer.testing import CliRunner

import pipelines.runner
from assets.staging import STAGING_TABLES
from pipelines.cli import app
from pipelines.definitions import defs
from pipelines.landing import inspect_pilot
from pipelines.resources import PilotPaths
from pipelines.runner import materialized_row_counts
from pipelines.sql_models import MODELS
from tests.test_pilot_matrix import PLACEHOLDER, placeholder_pdf


def test_definitions_load_with_every_sql_model_as_an_asset():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {m.name for m in MODELS} <= keys
    assert {"requests", "jobs", "samples", "quarantine", "report"} <= keys
    assert defs.resolve_job_def("pilot_report") is not None


def test_sql_asset_deps_follow_the_model_registry():
    graph = defs.get_repository_def().asset_graph
    for m in MODELS:
        parents = {k.to_user_string() for k in graph.get(dg.AssetKey(m.name)).parent_keys}
        assert parents == set(m.deps), m.name


class SmallRun(NamedTuple):
    base: Path
    pilot: str
    result: dg.ExecuteInProcessResult
    output: str  # what `stabilis backfill` printed
    dagster_home: Path

    @property
    def warehouse(self) -> Path:
        return self.base / "warehouse.duckdb"


@pytest.fixture(scope="module")
def small_pilot_run(tmp_path_factory: pytest.TempPathFactory):
    """One small simulated pilot materialized once for the module, the way an operator does
    it: `stabilis backfill PILOT`, recorded in a DAGSTER_HOME instance (what the UI shows).
    The run's result is kept (run_pilot, wrapped) for the checks and events asserted below."""
    from pipelines.demo import generate_demo_pilot

    base = tmp_path_factory.mktemp("stabilis")
    home = base / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    pilot = generate_demo_pilot(base / "landing", seed=3, scale=0.01).name
    results: list[dg.ExecuteInProcessResult] = []
    real_run_pilot = pipelines.runner.run_pilot

    def recorded(*args: object, **kwargs: object) -> dg.ExecuteInProcessResult:
        results.append(real_run_pilot(*args, **kwargs))  # type: ignore[arg-type]
        return results[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("STABILIS_DATA_DIR", str(base))
        mp.setenv("STABILIS_WHATIF_SEEDS", "1")
        mp.setattr(pipelines.runner, "run_pilot", recorded)
        # the PDF's layout is checked by tests/test_pilot_matrix.py (PDF_KIND, through the
        # same run_pilot) and tests/test_report*.py; here the report step writes a stand-in
        mp.setattr(weasyprint.HTML, "write_pdf", placeholder_pdf)
        out = CliRunner().invoke(app, ["backfill", pilot])
    assert out.exit_code == 0, out.output
    (result,) = results
    return SmallRun(base, pilot, result, out.output, home)


def test_small_pilot_materializes_to_a_report(small_pilot_run):
    base, pilot, result, output, _ = small_pilot_run
    assert result.success
    assert "metrics_headline" in output  # backfill's per-asset row counts table
    counts = materialized_row_counts(result)
    assert counts["requests"] and counts["requests"] > 1000
    assert counts["metrics_headline"] and counts["metrics_headline"] > 0
    html = base / "reports" / pilot / "report.html"
    pdf = base / "reports" / pilot / "report.pdf"
    assert html.stat().st_size > 10_000
    assert pdf.read_bytes() == PLACEHOLDER


def test_reconciliation_check_passed(small_pilot_run):
    result = small_pilot_run.result
    checks = result.get_asset_check_evaluations()
    passed = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in checks}
    assert passed[("ingest_log", "rows_reconcile")]
    # the blocking data-quality gates of assets/checks.py pass on the demo pilot too
    assert passed[("ingest_log", "no_raw_identifiers")]
    assert all(passed[(t, "schema")] for t in ("requests", "jobs", "samples"))
    # every derived table's generated checks ran in its step and passed on the demo pilot
    derived = {a for (a, name) in passed if name == "unique_key"}
    assert {m.name for m in MODELS} <= derived
    assert [k for k, ok in passed.items() if k[1] in ("unique_key", "value_range") and not ok] == []


def test_staging_data_version_is_the_sensors_landing_fingerprint(small_pilot_run):
    base, pilot, result, _, _ = small_pilot_run
    landed = inspect_pilot(base / "landing" / pilot, {}, settle_s=0).digest
    tags = {ev.event_specific_data.materialization.asset_key.to_user_string():  # type: ignore[union-attr]
            ev.event_specific_data.materialization.tags  # type: ignore[union-attr]
            for ev in result.get_asset_materialization_events()}
    assert all(tags[t]["dagster/data_version"] == landed for t in STAGING_TABLES)
    assert all(t.get("dagster/code_version") for t in tags.values())


def test_rerun_is_idempotent(small_pilot_run):
    base, pilot = small_pilot_run.base, small_pilot_run.pilot
    db = str(small_pilot_run.warehouse)

    def snapshot() -> list[tuple]:
        with duckdb.connect(db, read_only=True) as con:
            return con.execute(
                "SELECT metric, phase, segment, breakdown, breakdown_value, value "
                "FROM metrics_headline WHERE pilot = ? ORDER BY ALL",
                [pilot],
            ).fetchall()

    before = snapshot()
    resources = {
        "warehouse": DuckDBResource(database=db),
        "paths": PilotPaths(landing_dir=str(base / "landing"), reports_dir=str(base / "reports")),
    }
    again = pipelines.runner.run_pilot(
        pilot,
        resources=resources,
        dagster_instance=dg.DagsterInstance.ephemeral(),
        selection=[m.name for m in MODELS] + list(STAGING_TABLES),
    )
    assert again.success
    after = snapshot()
    # same rows; values equal up to float summation order (DuckDB aggregates in parallel)
    assert [r[:-1] for r in after] == [r[:-1] for r in before]
    for a, b in zip(after, before, strict=True):
        assert (a[-1] is None and b[-1] is None) or a[-1] == pytest.approx(b[-1], rel=1e-12), a


def test_backfill_records_the_run_with_the_ui_metadata(small_pilot_run):
    """The run is in DAGSTER_HOME (what the UI shows), with the UI metadata."""
    pilot, home = small_pilot_run.pilot, small_pilot_run.dagster_home
    with dg.DagsterInstance.from_config(str(home)) as instance:

        def metadata(asset: str) -> dict[str, object]:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[pilot]),
                limit=1,
            ).records
            return records[0].asset_materialization.metadata

        report = metadata("report")
        assert report["html_url"].value.startswith("file:///")
        assert report["html_url"].value.endswith(f"/reports/{pilot}/report.html")
        for table in ("requests", "metrics_headline"):
            meta = metadata(table)
            schema = meta["dagster/column_schema"].value
            assert "pilot" in {c.name for c in schema.columns}, table
            preview = meta["preview"].value
            assert preview.startswith("| ") and preview.count("\n") >= 2, table
            assert meta["dagster/row_count"].value > 0, table


def test_bad_partition_key_never_becomes_a_path(tmp_path: Path):
    paths = PilotPaths(landing_dir=str(tmp_path), reports_dir=str(tmp_path))
    with pytest.raises(ValueError, match="not a valid slug"):
        paths.pilot_dir("../etc")

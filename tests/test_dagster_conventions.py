"""Dagster conventions: code versions (a SQL edit marks its asset stale), checks generated for
every derived table from a declared key (they fail on a duplicate key in a real DuckDB file),
column descriptions, and every asset versioned in the definitions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from assets.checks import KEY_CHECK, RANGE_CHECK, TABLE_RULES, table_check_results
from assets.sql_factory import sql_asset, sql_code_version
from assets.table_metadata import table_metadata
from pipelines.partitions import PILOT_PARTITIONS_NAME
from pipelines.resources import SqlEngine
from pipelines.sql_models import BY_NAME, MODELS, SqlModel, build_all
from pipelines.warehouse import ensure_schema


@dataclass(frozen=True)
class TmpModel(SqlModel):
    """A model whose .sql file lives in a temporary folder."""

    root: Path = Path()

    @property
    def path(self) -> Path:
        return self.root / self.layer / f"{self.name}.sql"


def code_version(asset: dg.AssetsDefinition) -> str | None:
    (version,) = asset.code_versions_by_key.values()
    return version


def test_sql_code_version_follows_the_sql_text(tmp_path: Path):
    model = TmpModel("int_thresholds", "intermediate", ("thresholds",), root=tmp_path)
    model.path.parent.mkdir()
    model.path.write_text(BY_NAME["int_thresholds"].sql())
    before = code_version(sql_asset(model))
    assert before == sql_code_version(BY_NAME["int_thresholds"])  # same text, same version
    model.path.write_text(model.path.read_text() + "\n-- a comment is an edit too\n")
    after = code_version(sql_asset(model))
    assert after and after != before


def duplicate_key_table(db: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE burst_windows (pilot VARCHAR, pool VARCHAR, w INTEGER, "
                "arrivals INTEGER)")
    con.execute("INSERT INTO burst_windows VALUES ('a', 'p1', 1, 5), ('a', 'p1', 1, 6), "
                "('a', 'p1', NULL, 1), ('a', 'p2', 1, 2), ('b', 'p1', 1, 5), ('b', 'p1', 2, 5)")
    return con


def by_name(results: list[dg.AssetCheckResult]) -> dict[str, dg.AssetCheckResult]:
    return {r.check_name: r for r in results}


def test_generated_key_check_fails_on_a_duplicate_key(tmp_path: Path):
    con = duplicate_key_table(tmp_path / "w.duckdb")
    bad = by_name(table_check_results(con, "burst_windows", "a"))[KEY_CHECK]
    assert not bad.passed
    meta = {k: v.value for k, v in bad.metadata.items()}
    assert meta["rows"] == 4 and meta["duplicate_keys"] == 1 and meta["rows_with_null_key"] == 1
    assert by_name(table_check_results(con, "burst_windows", "b"))[KEY_CHECK].passed


def test_sparse_key_is_unique_where_set(tmp_path: Path):
    # int_logical_requests keeps the id of retried requests only: NULLs pass, a repeat fails
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE int_logical_requests (pilot VARCHAR, logical_id VARCHAR, "
                "phase VARCHAR, segment VARCHAR, first_arrival_ts TIMESTAMP)")
    con.execute("INSERT INTO int_logical_requests SELECT p, id, 'baseline', 'control', "
                "TIMESTAMP '2026-01-01' FROM (VALUES ('a', NULL), ('a', NULL), ('a', 'r1'), "
                "('a', 'r2'), ('b', NULL), ('b', 'r1'), ('b', 'r1')) t(p, id)")
    assert by_name(table_check_results(con, "int_logical_requests", "a"))[KEY_CHECK].passed
    bad = by_name(table_check_results(con, "int_logical_requests", "b"))[KEY_CHECK]
    assert not bad.passed and bad.metadata["duplicate_keys"].value == 1


def test_generated_range_check_fails_on_a_share_above_one(tmp_path: Path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE indices (pilot VARCHAR, phase VARCHAR, segment VARCHAR, "
                "index VARCHAR, value DOUBLE, unit VARCHAR)")
    con.execute("INSERT INTO indices VALUES ('a', 'baseline', 'all', 'di', 1.5, 'share'), "
                "('a', 'baseline', 'all', 'x', -2, 'pp'), ('b', 'baseline', 'all', 'di', 1, "
                "'share')")
    results = by_name(table_check_results(con, "indices", "a"))
    assert results[KEY_CHECK].passed
    assert not results[RANGE_CHECK].passed
    assert results[RANGE_CHECK].metadata["rows_out_of_range"].value == 1
    assert by_name(table_check_results(con, "indices", "b"))[RANGE_CHECK].passed


def test_every_sql_model_declares_a_key_whose_columns_exist(tmp_path: Path):
    assert {m.name for m in MODELS} <= set(TABLE_RULES)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    build_all(con, "empty")  # every table, no rows: the columns are what the SQL makes
    for m in MODELS:
        cols = {r[0] for r in con.execute(f'DESCRIBE "{m.name}"').fetchall()}
        rule = TABLE_RULES[m.name]
        assert {*rule.key, *rule.nullable, *rule.not_null,
                *filter(None, [rule.sparse_key])} <= cols, m.name
        assert all(r.passed for r in table_check_results(con, m.name, "empty")), m.name


def test_checks_run_in_the_sql_assets_step(tmp_path: Path):
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        ensure_schema(con)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(PILOT_PARTITIONS_NAME, ["p"])
    result = dg.materialize(
        [sql_asset(BY_NAME["int_thresholds"])], partition_key="p", instance=instance,
        resources={"warehouse": DuckDBResource(database=str(db)), "sql_engine": SqlEngine()},
    )
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == (KEY_CHECK, True)
    (mat,) = result.get_asset_materialization_events()
    tags = mat.event_specific_data.materialization.tags  # type: ignore[union-attr]
    assert tags["dagster/code_version"] == sql_code_version(BY_NAME["int_thresholds"])


def test_column_schema_describes_common_and_metric_columns(tmp_path: Path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE t (pilot VARCHAR, sla_adherence DOUBLE, oddity INTEGER)")
    schema = table_metadata(con, "t", "a")["dagster/column_schema"]
    docs = {c.name: c.description for c in schema.columns}
    assert "partition" in docs["pilot"]
    assert "SLA" in docs["sla_adherence"]  # from the metric catalog
    assert docs["oddity"] is None


@pytest.fixture(scope="module")
def definitions():
    from pipelines.definitions import defs

    return defs


def test_every_asset_has_a_code_version_and_every_table_its_checks(definitions):
    graph = definitions.resolve_asset_graph()
    executable = [k for k in graph.get_all_asset_keys() if graph.get(k).is_executable]
    assert [k for k in executable if not graph.get(k).code_version] == []
    checked = {c.asset_key.to_user_string() for c in graph.asset_check_keys
               if c.name == KEY_CHECK}
    assert set(TABLE_RULES) <= checked

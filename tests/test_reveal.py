"""`stabilis reveal` maps raw identifiers to the very tokens ingest stores, filters by token,
refuses unknown kinds and a missing secret in one line, and writes nothing (issue 15, item 5)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pipelines.anonymize import KINDS, Anonymizer
from pipelines.cli import app
from pipelines.config import load_pilot
from pipelines.ingest.load import ingest_pilot
from pipelines.warehouse import connect
from tests.pilot_yaml import write_pilot_yaml

runner = CliRunner()
WIDE = {"COLUMNS": "250"}
NODES = ("gpu-node-07", "gpu-node-12")
GPUS = ("gpu-node-07/3", "gpu-node-12/0")


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A tiny pilot ingested with secret 'reveal-test': (data dir, stored token -> raw)."""
    data = tmp_path_factory.mktemp("reveal") / "data"
    pilot = data / "landing" / "rv"
    pilot.mkdir(parents=True)
    rows = "".join(f"2026-03-02T10:00:0{i}Z,gpu_util,0.5,{n},{g}\n"
                   for i, (n, g) in enumerate(zip(NODES, GPUS, strict=True)))
    (pilot / "s.csv").write_text("ts,series,value,node,gpu\n" + rows)
    write_pilot_yaml(pilot, "rv", [{"kind": "canonical", "table": "samples", "path": "s.csv"}])
    old = os.environ.get("STABILIS_SECRET")
    os.environ["STABILIS_SECRET"] = "reveal-test"
    try:
        con = connect(data / "warehouse.duckdb")
        ingest_pilot(con, load_pilot(pilot))
        stored = con.execute("SELECT DISTINCT node, gpu FROM samples WHERE pilot = 'rv'"
                             " ORDER BY node").fetchall()
        con.close()
    finally:
        if old is None:
            os.environ.pop("STABILIS_SECRET")
        else:
            os.environ["STABILIS_SECRET"] = old
    assert len(stored) == 2
    anon = Anonymizer(b"reveal-test")  # only to pair each stored token with its raw value
    raw = {anon.token("node", n): n for n in NODES} | {anon.token("gpu", g): g for g in GPUS}
    assert {t for row in stored for t in row} == set(raw)
    return data, raw


@pytest.fixture
def env(landed: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> Path:
    data, _ = landed
    monkeypatch.setenv("STABILIS_DATA_DIR", str(data))
    monkeypatch.setenv("STABILIS_SECRET", "reveal-test")
    return data


def _rows(output: str) -> list[tuple[str, str, str]]:
    cells = [[c.strip() for c in ln.split("│")[1:-1]] for ln in output.splitlines() if "│" in ln]
    return [(c[0], c[1], c[2]) for c in cells if len(c) == 3 and c[0] != "kind"]


def _listing(root: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in root.rglob("*"))


def test_tokens_equal_the_stored_ones(env: Path, landed: tuple[Path, dict[str, str]]) -> None:
    _, raw = landed
    out = runner.invoke(app, ["reveal", "rv", *NODES, *GPUS], env=WIDE)
    assert out.exit_code == 0, out.output
    rows = _rows(out.output)
    assert len(rows) == len(KINDS) * 4  # every kind tried by default
    stored = {(k, v, t) for k, v, t in rows if t in raw}
    assert stored == ({("node", raw[t], t) for t in raw if t.startswith("node-")}
                      | {("gpu", raw[t], t) for t in raw if t.startswith("gpu-")})
    assert "reveal-test" not in out.output


def test_token_filter_and_file_input(env: Path, landed: tuple[Path, dict[str, str]],
                                     tmp_path: Path) -> None:
    _, raw = landed
    wanted = next(t for t, v in raw.items() if v == NODES[1])
    ids = tmp_path / "nodes.txt"
    ids.write_text("\n".join(NODES) + "\n\n  other-node  \n")
    out = runner.invoke(app, ["reveal", "rv", "--from-file", str(ids), "--token", wanted],
                        env=WIDE)
    assert out.exit_code == 0, out.output
    assert _rows(out.output) == [("node", NODES[1], wanted)]
    out = runner.invoke(app, ["reveal", "rv", "--from-file", "-", "--kind", "node"],
                        input="\n".join(NODES), env=WIDE)
    assert out.exit_code == 0, out.output
    assert [r[1] for r in _rows(out.output)] == list(NODES)
    out = runner.invoke(app, ["reveal", "rv", "other-node", "--token", wanted], env=WIDE)
    assert out.exit_code == 1
    assert out.output.strip() == f"error: pilot rv: no value given has token {wanted}"


def test_unknown_kind_and_bad_token_are_one_line(env: Path) -> None:
    out = runner.invoke(app, ["reveal", "rv", "x", "--kind", "rack"])
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == [
        f"error: pilot rv: unknown kind 'rack': expected one of {', '.join(KINDS)}"]
    out = runner.invoke(app, ["reveal", "rv", "x", "--token", "node-xyz"])
    assert out.exit_code == 1 and len(out.output.strip().splitlines()) == 1
    assert "is not a token" in out.output
    out = runner.invoke(app, ["reveal", "rv"])
    assert out.exit_code == 1 and "no value given" in out.output


def test_missing_secret_names_the_variable(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STABILIS_SECRET")
    out = runner.invoke(app, ["reveal", "rv", NODES[0]], env=WIDE)
    assert out.exit_code == 1
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: pilot rv: anonymization secret missing")
    assert "'STABILIS_SECRET'" in lines[0] and lines[0].endswith("to reveal its tokens")


def test_nothing_is_written(env: Path, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(NODES[0])
    before = _listing(env), _listing(tmp_path)
    with duckdb.connect(str(env / "warehouse.duckdb"), read_only=True) as con:
        tables = con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()
    out = runner.invoke(app, ["reveal", "rv", NODES[1], "--from-file", str(ids)], env=WIDE)
    assert out.exit_code == 0, out.output
    assert (_listing(env), _listing(tmp_path)) == before
    with duckdb.connect(str(env / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == tables


def test_pilot_yaml_alone_is_enough(env: Path, landed: tuple[Path, dict[str, str]],
                                    tmp_path: Path) -> None:
    """An operator may hold pilot.yaml without the telemetry: missing source files are fine,
    any other problem in pilot.yaml is still refused."""
    data, raw = landed
    yaml_text = (data / "landing" / "rv" / "pilot.yaml").read_text()
    (tmp_path / "pilot.yaml").write_text(yaml_text)
    out = runner.invoke(app, ["reveal", str(tmp_path), NODES[0], "--kind", "node"], env=WIDE)
    assert out.exit_code == 0, out.output
    assert _rows(out.output) == [("node", NODES[0], next(t for t, v in raw.items()
                                                          if v == NODES[0]))]
    (tmp_path / "pilot.yaml").write_text(yaml_text.replace("timezone: UTC", "timezone: Mars"))
    out = runner.invoke(app, ["reveal", str(tmp_path), NODES[0]], env=WIDE)
    assert out.exit_code == 2 and "timezone" in out.output

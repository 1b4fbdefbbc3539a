"""One pilot.yaml naming one source of every kind, ingested by one `stabilis ingest`.

Public samples under tests/fixtures/public are cited in PROVENANCE.md; the others are ours
(tests/fixtures/formats/README.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import LIVE_KINDS, SOURCE_KINDS
from tests.adapter_helpers import FORMATS, SHARED
from tests.pilot_yaml import write_pilot_yaml
from tests.test_adapters_formats import AWS_FIELDS

SOURCES = [
    ("canonical", "requests", FORMATS.parent / "pilot_ok" / "requests" / "part-1.csv", {}),
    ("tabular", "samples", FORMATS / "gpu_util.csv",
     {"columns": {"ts": "timestamp", "node": "host", "value": "util"}, "series": "gpu_util",
      "units": {"ts": "epoch_s", "value": "percent"}}),
    ("otlp-json", None, FORMATS / "genai_spans.json", {}),
    ("prometheus-text", None, FORMATS / "dcgm_vllm.prom",
     {"scraped_at": "2026-03-02T10:00:00Z"}),
    ("prometheus-json", None,
     SHARED / "prometheus" / "query_range_example_prometheus_docs_api.json", {}),
    ("sacct", None, SHARED / "slurm" / "sacct_parsable2_noheader_aws-hpc-cost-simulator_v2.txt",
     {"fields": AWS_FIELDS}),
    ("nvidia-smi", None, SHARED / "nvidia_smi"
     / "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__load__query-gpu.csv", {}),
    ("arrival-trace", None, SHARED / "traces" / "synthetic_trace.jsonl", {}),
]


def test_sources_cover_every_kind():
    # the live kind (prometheus-api) is covered against a real server in test_prometheus_api.py
    assert {k for k, *_ in SOURCES} == set(SOURCE_KINDS) - set(LIVE_KINDS)


def test_one_pilot_with_every_kind_ingests_in_one_command(tmp_path: Path, monkeypatch):
    pilot = tmp_path / "every-kind"
    pilot.mkdir()
    srcs = []
    for i, (kind, table, path, opts) in enumerate(SOURCES):
        name = f"s{i}-{path.name}"
        shutil.copy(path, pilot / name)
        src = {"kind": kind, "path": name, "options": opts}
        if table:
            src["table"] = table
        srcs.append(src)
    write_pilot_yaml(pilot, "every-kind", srcs, title="every source kind", e2e_ms=500,
                     timeout_ms=30000)
    # the samples span 2015 (Prometheus docs) to 2026-07 (nvidia-smi capture): phases that
    # cover them all, or their rows are quarantined as outside the pilot's phases
    doc = yaml.safe_load((pilot / "pilot.yaml").read_text())
    doc["phases"] = {"baseline": {"start": "2015-07-01T00:00:00Z", "end": "2026-03-03T00:00:00Z"},
                     "validation": {"start": "2026-03-03T00:00:00Z",
                                    "end": "2026-07-15T00:00:00Z"}}
    (pilot / "pilot.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("STABILIS_DATA_DIR", str(tmp_path / "data"))

    result = CliRunner().invoke(app, ["ingest", str(pilot)])
    assert result.exit_code == 0, result.output
    assert "failed" not in result.output

    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        per_source = con.execute(
            "SELECT source_index, source_kind, sum(rows_in), sum(rows_stored),"
            " sum(rows_quarantined) FROM ingest_log WHERE pilot = 'every-kind'"
            " GROUP BY ALL ORDER BY 1"
        ).fetchall()
        assert [k for _, k, *_ in per_source] == [k for k, *_ in SOURCES]
        for _, kind, rows_in, stored, quarantined in per_source:
            assert rows_in == stored + quarantined, kind
            assert stored > 0, kind
        tables = {t: con.execute(f"SELECT count(*) FROM {t} WHERE pilot = 'every-kind'")
                  .fetchone()[0] for t in ("requests", "jobs", "samples", "arrivals")}
    assert all(n > 0 for n in tables.values()), tables

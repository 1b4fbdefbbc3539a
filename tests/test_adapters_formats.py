"""Adapters on public samples (tests/fixtures/public, see its PROVENANCE.md) and on our own
corner-case fixtures (tests/fixtures/formats/README.md)."""

from __future__ import annotations

import math
import os
from datetime import datetime

import polars as pl
import pytest

from pipelines.ingest.base import AdapterContext
from tests.adapter_helpers import ANCHOR, FORMATS, SHARED, run


def by_series(p, series):
    return p.frame.filter(pl.col("series") == series)


# --- prometheus-text -----------------------------------------------------------------------


def test_prometheus_text_dcgm_and_vllm_families(tmp_path):
    path = FORMATS / "dcgm_vllm.prom"
    mtime = datetime(2026, 3, 2, 12).timestamp()
    os.utime(path, (mtime, mtime))
    p = run("prometheus-text", path, scraped_at="2026-03-02T10:00:00Z")
    util = by_series(p, "gpu_util").filter(pl.col("value").is_not_nan()).sort("gpu")
    assert util.get_column("value").to_list() == [0.87, 0.12]
    # own timestamp (ms) wins over options.scraped_at
    assert util.get_column("ts").to_list() == [datetime(2026, 3, 2, 10), datetime(2026, 3, 2, 10)]
    assert util.get_column("gpu").to_list() == ["GPU-aaaa-0001", "GPU-aaaa-0002"]
    assert util.get_column("node").unique().to_list() == ["gpu-node-001"]
    assert by_series(p, "energy_j").get_column("value").to_list() == [pytest.approx(123456.789)]
    assert by_series(p, "power_w").get_column("value").to_list() == [631.95]
    assert by_series(p, "sm_active").get_column("value").to_list() == [0.41]
    assert by_series(p, "DCGM_FI_DEV_SM_CLOCK").height == 1  # unknown family kept by name
    assert by_series(p, "queue_waiting").get_column("pool").to_list() == ["pool-a"]
    b = by_series(p, "e2e_latency_s_bucket").sort("le")
    assert b.get_column("le").to_list() == [0.5, 1.0, math.inf]
    assert by_series(p, "e2e_latency_s_sum").get_column("value").to_list() == [21.5]
    assert by_series(p, "e2e_latency_s_count").height == 1
    assert by_series(p, "weird_metric").height == 1  # escaped label values parse
    assert p.rejects.select("line", "field").rows() == [(24, None)]
    assert p.rejects.get_column("reason")[0].startswith("not a Prometheus sample line")
    assert p.rows_in == 15  # 14 sample lines + 1 junk line; the NaN line is refused later
    assert p.dropped["label:pod"] == 1 and p.dropped["label:model_name"] == 6


def test_prometheus_text_without_scraped_at_uses_file_mtime(tmp_path):
    f = tmp_path / "s.prom"
    f.write_text("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 50\n")
    t = datetime(2026, 3, 3, 1, 2, 3)
    os.utime(f, (t.timestamp(), t.timestamp()))
    p = run("prometheus-text", f)
    assert p.frame.get_column("ts").to_list() == [_utc(t.timestamp())]


def _utc(ts: float) -> datetime:
    from datetime import UTC

    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def test_prometheus_text_streams_in_chunks(tmp_path):
    f = tmp_path / "big.prom"
    f.write_text("".join(f'm{{gpu="{i % 8}"}} {i} {1772445600000 + i}\n' for i in range(1000)))
    from pipelines.config import Source
    from pipelines.ingest.prometheus_text import read_prometheus_text

    chunks = list(read_prometheus_text(f, Source("prometheus-text", "x", "samples", {}),
                                       AdapterContext(chunk_rows=300)))
    assert [c.rows_in for c in chunks] == [300, 300, 300, 100]
    assert sum(c.frame.height for c in chunks) == 1000


# --- prometheus-json ----------------------------------------------------------------------


def test_prometheus_json_query_range_docs_example():
    # prometheus/prometheus docs/querying/api.md "Range queries" example (PROVENANCE.md)
    p = run("prometheus-json",
            SHARED / "prometheus" / "query_range_example_prometheus_docs_api.json")
    assert p.rows_in == 6 and p.frame.height == 6 and p.rejects.height == 0
    assert set(p.frame.get_column("series")) == {"up"}
    assert p.frame.get_column("ts").min() == datetime(2015, 7, 1, 20, 10, 30, 781000)
    assert sorted(set(p.frame.get_column("node"))) == ["localhost:9090", "localhost:9091"]


def test_prometheus_json_vector_without_envelope(tmp_path):
    f = tmp_path / "v.json"
    f.write_text('{"resultType": "vector", "result": ['
                 '{"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "UUID": "GPU-1"},'
                 ' "value": [1772445600, "55"]},'
                 '{"metric": {"__name__": "x"}, "value": [1772445600, "not-a-number"]}]}')
    p = run("prometheus-json", f)
    assert p.frame.select("series", "value").rows() == [("gpu_util", 0.55)]
    assert p.rejects.get_column("line").to_list() == [2]


# --- otlp-json -----------------------------------------------------------------------------


def test_otlp_proto_example_trace_with_all_spans():
    # open-telemetry/opentelemetry-proto examples/trace.json (PROVENANCE.md)
    p = run("otlp-json", SHARED / "otlp" / "opentelemetry-proto_examples_trace.json",
            all_spans=True, pool="pool-x", priority="P2")
    assert p.rows_in == 1 and p.frame.height == 1
    r = p.frame.row(0, named=True)
    assert r["status"] == "ok" and r["pool"] == "pool-x" and r["end_ts"] > r["arrival_ts"]
    assert p.dropped == {"my.span.attr": 1}


def test_otlp_genai_spans_vllm_latencies_retries_and_payload():
    p = run("otlp-json", FORMATS / "genai_spans.json")
    assert p.rows_in == 3  # two GenAI spans + the one with a broken start; db span skipped
    assert p.rejects.rows() == [(3, "arrival_ts", "expected startTimeUnixNano (Unix nanoseconds)",
                                 "not-a-time")]
    first, retry = p.frame.sort("attempt").rows(named=True)
    t0 = datetime(2026, 3, 2, 10)
    assert first["arrival_ts"] == t0
    assert first["start_ts"] == datetime(2026, 3, 2, 10, 0, 0, 250000)
    assert first["first_token_ts"] == datetime(2026, 3, 2, 10, 0, 0, 400000)
    assert (first["input_tokens"], first["output_tokens"]) == (120, 48)
    assert (first["pool"], first["node"], first["priority"]) == ("pool-a", "gpu-node-007", "P0")
    assert retry["status"] == "timeout" and retry["attempt"] == 1
    assert retry["parent_request_id"] == first["request_id"]
    assert p.dropped == {"gen_ai.prompt": 1, "gen_ai.completion.0.content": 1, "user.email": 1,
                         "event:gen_ai.content.prompt": 1}


def test_otlp_jsonl_batches_stream(tmp_path):
    doc = (FORMATS / "genai_spans.json").read_text().replace("\n", " ")
    f = tmp_path / "spans.jsonl"
    f.write_text(doc + "\n" + "{broken\n" + doc + "\n")
    p = run("otlp-json", f)
    assert p.rows_in == 7 and p.frame.height == 4
    assert any("invalid JSON" in r for r in p.rejects.get_column("reason"))


# --- sacct ---------------------------------------------------------------------------------

AWS_FIELDS = ("State|JobID|ReqCPUS|ReqMem|ReqNodes|Constraints|Submit|Eligible|Start|Elapsed|"
              "Suspended|End|ExitCode|DerivedExitCode|AllocNodes|NCPUS|MaxDiskRead|MaxDiskWrite|"
              "MaxPages|MaxRSS|MaxVMSize|CPUTime|UserCPU|SystemCPU|TotalCPU|Partition")


def test_sacct_public_noheader_dump_folds_steps():
    # aws-samples/hpc-cost-simulator test_files/SlurmLogParser/sacct-output-v2.txt (PROVENANCE)
    path = SHARED / "slurm" / "sacct_parsable2_noheader_aws-hpc-cost-simulator_v2.txt"
    p = run("sacct", path, fields=AWS_FIELDS)
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    jobs = {ln.split("|")[1].split(".")[0] for ln in lines}
    assert p.rows_in == len(jobs) == p.frame.height and p.rejects.height == 0
    assert p.frame.get_column("job_id").is_unique().all()
    states = p.frame.get_column("state").value_counts().rows()
    assert dict(states)["CANCELLED"] > 0
    assert "CANCELLED BY" not in " ".join(p.frame.get_column("state"))
    assert p.dropped["State:by_uid"] > 0
    assert p.frame.get_column("submit_ts").min() == datetime(2022, 2, 18, 17, 32, 41)


def test_sacct_with_header_steps_tres_unknown_and_bad_lines():
    p = run("sacct", FORMATS / "sacct_header.txt", timezone="Europe/Berlin")
    jobs = {r["job_id"]: r for r in p.frame.rows(named=True)}
    assert set(jobs) == {"1001", "1002", "1003", "1004"}
    j1 = jobs["1001"]
    assert j1["gpus"] == 8 and j1["queue"] == "gpu" and j1["node"] == "gpu-node-[001-002]"
    assert j1["submit_ts"] == datetime(2026, 3, 2, 7)  # Berlin wall time -> UTC
    assert j1["priority"] == 4294901759.0
    assert jobs["1002"]["state"] == "CANCELLED" and jobs["1002"]["gpus"] == 3
    # End Unknown on a terminal job: Start + Elapsed (1-02:03:04)
    assert jobs["1002"]["end_ts"] == datetime(2026, 3, 3, 9, 14, 4)
    assert jobs["1003"]["start_ts"] is None and jobs["1003"]["node"] is None
    assert jobs["1004"]["state"] == "COMPLETED"  # seen only through its extern step
    assert sorted(p.rejects.select("line", "field").rows()) == [(8, "submit_ts"), (9, None)]
    assert p.rows_in == 6


def test_sacct_without_header_or_fields_fails_clearly(tmp_path):
    from pipelines.ingest.base import SourceError

    f = tmp_path / "s.txt"
    f.write_text("1|COMPLETED|gpu\n")
    with pytest.raises(SourceError, match="no header line"):
        run("sacct", f)


# --- nvidia-smi ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["idle", "load"])
def test_nvidia_smi_public_h100_capture(name):
    # utkuozdemir/nvidia_gpu_exporter H100 query-gpu capture (PROVENANCE.md)
    path = (SHARED / "nvidia_smi"
            / f"linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__{name}__query-gpu.csv")
    p = run("nvidia-smi", path)
    assert p.rows_in == 1 and p.rejects.height == 0
    series = dict(p.frame.select("series", "value").rows())
    assert 0 <= series["gpu_util"] <= 1
    assert series["power_w"] > 0 and series["mem_used_bytes"] >= 0
    assert p.frame.get_column("ts").unique().len() == 1
    gpus = p.frame.get_column("gpu").unique().to_list()
    assert gpus == ["GPU-00000000-0000-0000-0000-000000000000"]
    assert "serial" in p.dropped and "name" in p.dropped


def test_nvidia_smi_units_na_and_bad_values():
    p = run("nvidia-smi", FORMATS / "nvsmi.csv", timezone="UTC")
    line2 = p.frame.filter(pl.col("__line") == 2)
    assert dict(line2.select("series", "value").rows()) == {
        "gpu_util": 0.87, "power_w": 300.5, "mem_used_bytes": 1024 * 1024**2}
    assert p.rejects.select("line", "field").rows() == [(3, None), (4, "utilization.gpu")]
    assert p.rows_in == 3


# --- tabular -------------------------------------------------------------------------------


def test_tabular_mapping_epoch_and_percent():
    p = run("tabular", FORMATS / "gpu_util.csv", table="samples",
            columns={"ts": "timestamp", "node": "host", "value": "util"}, series="gpu_util",
            units={"ts": "epoch_s", "value": "percent"})
    assert p.frame.select("ts", "node", "value").rows() == [
        (datetime(2026, 3, 2, 10), "gpu-node-001", 0.875),
        (datetime(2026, 3, 2, 10, 1), "gpu-node-001", 0.12),
        (datetime(2026, 3, 2, 10, 3), "gpu-node-002", None),  # refused by the schema gate
    ]
    assert p.rejects.select("line", "field", "value").rows() == [(4, "value", "abc")]
    assert p.dropped == {"mem": 3}  # counted on the rows that reached the table


def test_tabular_unknown_column_is_a_clear_source_error():
    from pipelines.ingest.base import SourceError

    with pytest.raises(SourceError, match="source column 'nope' not found"):
        run("tabular", FORMATS / "gpu_util.csv", table="samples", columns={"ts": "nope"})


# --- arrival-trace -------------------------------------------------------------------------


def test_arrival_trace_azure_absolute():
    # Azure/AzurePublicDataset data/AzureLLMInferenceTrace_conv.csv (PROVENANCE.md)
    p = run("arrival-trace", SHARED / "traces" / "AzureLLMInferenceTrace_conv.csv")
    assert p.table == "arrivals" and p.rows_in == 19366 == p.frame.height
    assert p.frame.get_column("ts").min() == datetime(2023, 11, 16, 18, 15, 46, 680590)
    assert set(p.frame.get_column("source")) == {"azure"}


def test_arrival_trace_mooncake_relative_ms_anchored_at_first_phase():
    # kvcache-ai/Mooncake FAST25-release/traces/synthetic_trace.jsonl (PROVENANCE.md)
    p = run("arrival-trace", SHARED / "traces" / "synthetic_trace.jsonl")
    assert p.rows_in == 3993 == p.frame.height
    assert p.frame.get_column("ts").min() == ANCHOR
    assert p.frame.get_column("ts").max() == datetime(2026, 3, 2, 0, 17, 2, 25000)
    assert p.dropped == {"hash_ids": 3993}


def test_arrival_trace_burstgpt_seconds_with_options_start():
    p = run("arrival-trace", FORMATS / "burstgpt.csv", start="2026-04-01T00:00:00Z")
    assert p.frame.select("ts", "input_tokens", "output_tokens").rows()[0] == (
        datetime(2026, 4, 1, 0, 0, 5), 472, 18)
    assert p.rejects.select("line", "field").rows() == [(5, "ts")]

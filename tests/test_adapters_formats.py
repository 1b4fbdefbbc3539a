"""Adapters on public samples (tests/fixtures/public, see its PROVENANCE.md) and on our own
corner-case fixtures (tests/fixtures/formats/README.md)."""

from __future__ import annotations

import math
import os
from datetime import datetime

import polars as pl
import pytest

from pipelines.ingest.base import AdapterContext
from tests.adapter_helpers import ANCHOR, FORMATS, SHARED, reconciles, run


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
    assert p.rejects.rows() == [
        (3, "arrival_ts", "expected startTimeUnixNano (Unix nanoseconds)", "not-a-time"),
        (3, "spanId", "expected 16 hex digits, found 4 characters", None),
        (3, "traceId", "expected 32 hex digits, found 4 characters", None)]
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


# --- real formats as they come (issue 13, item 4) -----------------------------------------

PARSABLE2 = SHARED / "slurm" / "sacct_parsable2_noheader_aws-hpc-cost-simulator_v2.txt"


def _first_lines(path, n, tmp_path):
    f = tmp_path / f"first{n}.txt"
    f.write_text("".join(path.read_text().splitlines(keepends=True)[:n]))
    return f


@pytest.mark.parametrize("name", ["sacct_parsable_noheader.txt", "sacct_parsable_header.txt"])
def test_sacct_parsable_trailing_delimiter_reads_like_parsable2(tmp_path, name):
    # the same 30 lines as the public --parsable2 sample, each ending with '|' (--parsable)
    p = run("sacct", FORMATS / name, fields=AWS_FIELDS)
    same = run("sacct", _first_lines(PARSABLE2, 30, tmp_path), fields=AWS_FIELDS)
    assert p.rejects.height == 0 and p.rows_in == same.rows_in > 0
    assert p.frame.drop("__line").equals(same.frame.drop("__line"))


def test_sacct_parsable_field_list_option_may_keep_its_trailing_bar():
    p = run("sacct", FORMATS / "sacct_parsable_noheader.txt", fields=AWS_FIELDS + "|")
    assert p.rejects.height == 0 and p.frame.height > 0


def test_sacct_parsable_wrong_field_count_is_still_quarantined(tmp_path):
    lines = (FORMATS / "sacct_parsable_header.txt").read_text().splitlines()
    lines[3] = lines[3] + "extra|"  # 27 fields and the trailing delimiter
    lines[5] = "|".join(lines[5].split("|")[:10]) + "|x|y"  # short: padded, then read
    f = tmp_path / "s.txt"
    f.write_text("\n".join(lines) + "\n")
    p = run("sacct", f)
    assert p.rejects.select("line", "field", "reason").rows() == [
        (4, None, "expected 26 fields separated by '|', found 28"),
        (6, "end_ts", "expected an ISO-8601 timestamp"),
    ]
    assert reconciles(p)


def test_sacct_line_with_a_byte_that_is_not_utf8_is_quarantined_alone(tmp_path):
    f = tmp_path / "s.txt"
    f.write_bytes(b"JobID|State|Partition|\n1|COMPLETED|gpu|\n2|COMPLETED|gp\xe9|\n")
    p = run("sacct", f)
    assert p.frame.get_column("job_id").to_list() == ["1"]
    assert p.rejects.select("line", "field", "reason").rows() == [(3, "queue", "not valid UTF-8")]


def _prom_docs_result():
    import json

    doc = json.loads((SHARED / "prometheus" / "query_range_example_prometheus_docs_api.json")
                     .read_text())
    return doc


@pytest.mark.parametrize("shape", ["whole", "data", "result"])
def test_prometheus_json_matrix_whole_data_or_bare_result(tmp_path, shape):
    import json

    doc = _prom_docs_result()
    body = {"whole": doc, "data": doc["data"], "result": doc["data"]["result"]}[shape]
    f = tmp_path / "r.json"
    f.write_text(json.dumps(body))
    p = run("prometheus-json", f)
    assert p.rows_in == 6 and p.frame.height == 6 and p.rejects.height == 0
    assert p.frame.get_column("ts").min() == datetime(2015, 7, 1, 20, 10, 30, 781000)


def test_prometheus_json_bare_vector_result(tmp_path):
    f = tmp_path / "v.json"
    f.write_text('[{"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "UUID": "GPU-1"},'
                 ' "value": [1772445600, "55"]},'
                 ' {"metric": {"__name__": "vllm:num_requests_waiting"},'
                 ' "value": [1772445600.5, "3"]}]')
    p = run("prometheus-json", f)
    assert p.frame.select("series", "value").rows() == [("gpu_util", 0.55), ("queue_waiting", 3)]
    assert p.rejects.height == 0


def test_prometheus_json_bare_scalar_is_a_clear_error(tmp_path):
    from pipelines.ingest.base import SourceError

    f = tmp_path / "s.json"
    f.write_text('[1772445600, "1"]')
    with pytest.raises(SourceError, match="scalar or string result"):
        run("prometheus-json", f)


def test_prometheus_json_error_status_quotes_error_type_and_error(tmp_path):
    from pipelines.ingest.base import SourceError

    f = tmp_path / "e.json"
    f.write_text('{"status": "error", "errorType": "timeout", '
                 '"error": "query timed out in expression evaluation"}')
    with pytest.raises(SourceError) as ei:
        run("prometheus-json", f)
    msg = str(ei.value)
    assert msg == ("Prometheus API response status 'error' (errorType 'timeout'): "
                   "query timed out in expression evaluation")


def test_prometheus_json_warnings_become_notes(tmp_path):
    import json

    doc = _prom_docs_result()
    doc["warnings"] = ["PromQL info: metric might not be a counter"]
    f = tmp_path / "w.json"
    f.write_text(json.dumps(doc))
    from pipelines.config import Source
    from pipelines.ingest.prometheus_json import read_prometheus_json

    (parsed,) = read_prometheus_json(f, Source("prometheus-json", "w.json", "samples", {}),
                                     AdapterContext())
    assert parsed.notes == ["Prometheus API warning: PromQL info: metric might not be a counter"]


def _bucket(le, value, ts=1772445600, **labels):
    lab = {"__name__": "vllm:e2e_request_latency_seconds_bucket", "le": le, **labels}
    return {"metric": lab, "values": [[ts, str(value)]]}


def test_prometheus_json_histogram_without_inf_bucket_is_quarantined(tmp_path):
    import json

    result = [_bucket("0.5", 3), _bucket("+Inf", 4),  # complete at this time
              _bucket("0.5", 1, pool="b"), _bucket("1", 2, pool="b")]  # no +Inf: refused
    f = tmp_path / "h.json"
    f.write_text(json.dumps({"resultType": "matrix", "result": result}))
    p = run("prometheus-json", f)
    assert p.frame.select("pool", "le").rows() == [(None, 0.5), (None, math.inf)]
    assert p.rejects.select("line", "field", "reason", "value").rows() == [
        (3, "le", "histogram without +Inf bucket", "0.5"),
        (4, "le", "histogram without +Inf bucket", "1.0")]


def test_prometheus_text_histogram_without_inf_and_duplicate_type(tmp_path):
    f = tmp_path / "m.prom"
    f.write_text(
        "# TYPE vllm:e2e_request_latency_seconds histogram\n"
        'vllm:e2e_request_latency_seconds_bucket{le="0.5"} 3 1772445600000\n'
        'vllm:e2e_request_latency_seconds_bucket{le="+Inf"} 4 1772445600000\n'
        'vllm:e2e_request_latency_seconds_bucket{le="0.5"} 5 1772445660000\n'
        'vllm:e2e_request_latency_seconds_bucket{le="1"} 6 1772445660000\n'
        "# TYPE vllm:e2e_request_latency_seconds histogram\n"
        "vllm:e2e_request_latency_seconds_count 4 1772445600000\n")
    p = run("prometheus-text", f)
    assert p.rejects.select("line", "reason").rows() == [
        (4, "histogram without +Inf bucket"), (5, "histogram without +Inf bucket")]
    assert p.frame.height == 3 and p.rows_in == 5
    from pipelines.config import Source
    from pipelines.ingest.prometheus_text import read_prometheus_text

    chunks = list(read_prometheus_text(f, Source("prometheus-text", "m", "samples", {}),
                                       AdapterContext()))
    assert chunks[-1].notes == [
        "1 duplicate # TYPE line(s) for a family already declared in this file: "
        "'vllm:e2e_request_latency_seconds' at line 6 (first at line 1)"]


def test_prometheus_text_chunks_never_split_a_histogram(tmp_path):
    f = tmp_path / "m.prom"
    les = ["0.1", "0.5", "1", "+Inf"]
    f.write_text("".join(f'h_bucket{{gpu="{g}",le="{le}"}} {k} 1772445600000\n'
                         for g in range(5) for k, le in enumerate(les)))
    from pipelines.config import Source
    from pipelines.ingest.prometheus_text import read_prometheus_text

    chunks = list(read_prometheus_text(f, Source("prometheus-text", "m", "samples", {}),
                                       AdapterContext(chunk_rows=3)))
    assert all(c.rejects.height == 0 for c in chunks)
    assert sum(c.frame.height for c in chunks) == 20


# --- otlp-json: pool and priority from resource attributes; ids ----------------------------


def _otlp(tmp_path, resource, span_attrs=(), trace="5b8efff798038103d269b633813fc60c",
          span="eee19b7ec3c1b174", name="o.json"):
    import json

    def kv(k, v):
        return {"key": k, "value": {"stringValue": v}}

    span_doc = {"traceId": trace, "spanId": span, "startTimeUnixNano": "1772445600000000000",
                "endTimeUnixNano": "1772445601000000000",
                "attributes": [kv("gen_ai.system", "vllm"), *(kv(k, v) for k, v in span_attrs)]}
    doc = {"resourceSpans": [{"resource": {"attributes": [kv(k, v) for k, v in resource]},
                              "scopeSpans": [{"spans": [span_doc]}]}]}
    f = tmp_path / name
    f.write_text(json.dumps(doc))
    return f


def _otlp_parsed(path, **options):
    from pipelines.config import Source
    from pipelines.ingest.otlp import read_otlp_json

    (parsed,) = read_otlp_json(path, Source("otlp-json", path.name, "requests", options),
                               AdapterContext())
    return parsed


def test_otlp_pool_and_priority_from_resource_attributes(tmp_path):
    f = _otlp(tmp_path, [("service.name", "chat-svc"), ("k8s.deployment.name", "vllm-pool-a"),
                         ("priority", "P1")])
    p = _otlp_parsed(f)
    assert p.frame.select("pool", "priority").rows() == [("vllm-pool-a", "P1")]
    assert p.notes == [
        "priority taken from the 'priority' attribute (no options.priority and no "
        "'stabilis.priority' attribute)",
        "pool taken from the resource attribute 'k8s.deployment.name' (no options.pool and no "
        "'stabilis.pool' attribute)"]
    # options win over the inferred attributes, an explicit attribute over the options
    p = _otlp_parsed(f, pool="pool-x", priority="P3")
    assert p.frame.select("pool", "priority").rows() == [("pool-x", "P3")] and p.notes == []
    f = _otlp(tmp_path, [("service.name", "chat-svc"), ("stabilis.pool", "pool-s")])
    assert _otlp_parsed(f, pool="pool-x", priority="P0").frame["pool"].to_list() == ["pool-s"]
    f = _otlp(tmp_path, [("service.name", "chat-svc")])
    assert _otlp_parsed(f, priority="P0").frame["pool"].to_list() == ["chat-svc"]


def test_otlp_without_pool_or_priority_says_once_which_option_to_set(tmp_path):
    import json

    f = _otlp(tmp_path, [("service.name", "unknown_service:python")])
    doc = json.loads(f.read_text())
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    for k in range(1, 5):  # five spans, one message each for pool and priority
        spans.append({**spans[0], "spanId": f"{k:016x}"})
    f.write_text(json.dumps(doc))
    p = _otlp_parsed(f)
    assert len(p.notes) == 2
    assert sum("set options.pool" in n for n in p.notes) == 1
    assert sum("set options.priority" in n for n in p.notes) == 1
    assert p.frame.height == 5  # the rows as before: the schema quarantines them at load
    assert p.frame.get_column("pool").null_count() == 5


@pytest.mark.parametrize(("trace", "span", "field", "why"), [
    ("5b8efff798038103d269b633813fc60", "eee19b7ec3c1b174", "traceId",
     "expected 32 hex digits, found 31 characters"),
    ("5b8efff798038103d269b633813fc60z", "eee19b7ec3c1b174", "traceId",
     "expected 32 hex digits, found a non-hex character"),
    ("5b8efff798038103d269b633813fc60c", "W+4bfsPBsXQ=", "spanId",
     "expected 16 hex digits, found 12 characters"),
    ("5b8efff798038103d269b633813fc60c", "0000000000000000", "spanId",
     "expected 16 hex digits, not all zero (an invalid id)"),
])
def test_otlp_ids_that_are_not_hex_are_quarantined(tmp_path, trace, span, field, why):
    p = _otlp_parsed(_otlp(tmp_path, [], trace=trace, span=span), pool="p", priority="P0")
    assert p.frame.height == 0 and p.rows_in == 1
    assert p.rejects.rows() == [(1, field, why, None)]


# --- CSV with a byte that is not UTF-8 -----------------------------------------------------


@pytest.mark.parametrize("kind", ["canonical", "tabular"])
def test_csv_row_with_a_byte_that_is_not_utf8_is_quarantined_alone(tmp_path, kind):
    f = tmp_path / "s.csv"
    f.write_bytes(b"ts,series,value\n2026-03-02T10:00:00Z,a,1\n2026-03-02T10:01:00Z,gr\xe9,2\n"
                  b"2026-03-02T10:02:00Z,a,3\n")
    p = run(kind, f, table="samples")
    assert p.frame.get_column("value").to_list() == [1, 3]
    assert p.rejects.rows() == [(3, "series", "not valid UTF-8", None)]
    assert p.rows_in == 3 and p.dropped == {}


def test_csv_not_utf8_in_a_later_block_keeps_its_file_line(tmp_path):
    rows = [f"2026-03-02T10:00:00Z,a,{i}\n".encode() for i in range(2000)]
    rows[1500] = b"2026-03-02T10:00:00Z,\xff\xfe,9\n"
    f = tmp_path / "s.csv"
    f.write_bytes(b"ts,series,value\n" + b"".join(rows))
    p = run("canonical", f, table="samples", ctx=AdapterContext(chunk_rows=300))
    assert p.rejects.rows() == [(1502, "series", "not valid UTF-8", None)]
    assert p.frame.height == 1999 and p.rows_in == 2000

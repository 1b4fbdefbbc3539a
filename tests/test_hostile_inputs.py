"""A hostile corpus: every broken input gets a clear error or a quarantine entry, rows in =
stored + quarantined per file, and a source that fails leaves no row behind. Plus property
tests: any bytes into any parser give rows or clean errors, never an unhandled exception."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.config import PilotConfigError, Source, load_pilot
from pipelines.ingest.base import AdapterContext, Parsed
from pipelines.ingest.load import INPUT_ERRORS, ingest_pilot
from pipelines.ingest.registry import ADAPTERS
from pipelines.warehouse import connect
from tests.pilot_yaml import write_pilot_yaml

GOOD = b"ts,series,value\n2026-03-02T10:00:00Z,gpu_util,0.5\n"
SACCT = {"fields": "JobID|State|Submit|Start|End"}
PROM_OK = b'DCGM_FI_DEV_GPU_UTIL{gpu="0"} 50 1772445600000\n'
SPAN = ('{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",'
        '"startTimeUnixNano":"1772445600000000000",'
        '"endTimeUnixNano":"1772445601000000000","attributes":[{"key":"gen_ai.system",'
        '"value":{"stringValue":"vllm"}}]}')
OTLP = '{"resourceSpans":[{"scopeSpans":[{"spans":[%s]}]}]}'
OTLP_OPTS = {"pool": "p", "priority": "P1"}


def make_pilot(tmp: Path, sources: list[tuple[str, str | None, str, bytes, dict[str, Any]]],
               name: str = "hostile") -> Path:
    """A pilot with one good canonical samples file (source 0) plus `sources`."""
    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "good.csv").write_bytes(GOOD)
    srcs: list[dict[str, Any]] = [{"kind": "canonical", "table": "samples", "path": "good.csv"}]
    for kind, table, fname, content, opts in sources:
        (d / fname).write_bytes(content)
        s: dict[str, Any] = {"kind": kind, "path": fname, "options": opts}
        if table:
            s["table"] = table
        srcs.append(s)
    write_pilot_yaml(d, name, srcs)
    return d


FAIL, QUAR = "fail", "quarantine"
# (id, kind, table, file name, content, options, outcome, reason substring)
CORPUS: list[tuple[str, str, str | None, str, bytes, dict[str, Any], str, str]] = [
    ("csv-binary-junk", "canonical", "samples", "a.csv", b"\x89PNG\r\n\x1a\n\x00\xff" * 50, {},
     FAIL, ""),
    ("csv-empty", "canonical", "samples", "a.csv", b"", {}, FAIL, "empty file"),
    ("csv-wrong-delimiter", "canonical", "samples", "a.csv",
     b"ts;series;value\n2026-03-02T10:00:00Z;gpu_util;0.5\n", {}, FAIL, "missing required"),
    ("csv-bom-crlf", "canonical", "samples", "a.csv",
     b"\xef\xbb\xbfts,series,value\r\n2026-03-02T10:00:00Z,gpu_util,x\r\n", {}, QUAR,
     "expected a number"),
    ("csv-latin1", "canonical", "samples", "a.csv",
     b"ts,series,value\n2026-03-02T10:00:00Z,gr\xe9,1\n2026-03-02T10:00:00Z,a,b,c\n", {},
     QUAR, "not valid UTF-8"),
    ("csv-latin1-header", "canonical", "samples", "a.csv",
     b"ts,s\xe9ries,value\n2026-03-02T10:00:00Z,a,1\n", {}, FAIL, "header"),
    ("csv-nan-negative", "canonical", "samples", "a.csv",
     b"ts,series,value\n2026-03-02T10:00:00Z,gpu_util,NaN\n2026-03-02T10:00:00Z,x,-inf\n", {},
     QUAR, "finite"),
    ("csv-long-line", "canonical", "samples", "a.csv",
     b"ts,series,value\n2026-03-02T10:00:00Z," + b"x" * 2_000_000 + b",zz\n", {}, QUAR,
     "expected a number"),
    ("csv-control-chars", "canonical", "samples", "a.csv",
     b"ts,series,value\n2026-03-02T10:00:00Z,\x1b[31m<script>,oops\n", {}, QUAR, "number"),
    ("jsonl-truncated", "canonical", "requests", "a.jsonl",
     b'{"request_id": "r1", "attempt": 0, "pool": "p"', {}, QUAR, "invalid JSON"),
    ("jsonl-duplicate-ids-negative", "canonical", "requests", "a.jsonl",
     b'{"request_id":"r","attempt":-1,"pool":"p","model_class":"llm","priority":"P0",'
     b'"arrival_ts":"2026-03-02T10:00:00Z","status":"ok","end_ts":"2026-03-02T09:00:00Z"}\n',
     {}, QUAR, ""),
    ("jsonl-clock-skew", "canonical", "requests", "a.jsonl",
     b'{"request_id":"r","attempt":0,"pool":"p","model_class":"llm","priority":"P0",'
     b'"arrival_ts":"2026-03-02T10:00:00Z","start_ts":"2026-03-02T09:59:59Z","status":"ok",'
     b'"end_ts":"2026-03-02T10:00:01Z"}\n', {}, QUAR, "start_ts is before arrival_ts"),
    ("parquet-truncated", "canonical", "samples", "a.parquet", b"PAR1\x00\x00garbage", {}, FAIL,
     "unreadable Parquet"),
    ("tabular-missing-col", "tabular", "samples", "a.csv", b"x,y\n1,2\n",
     {"columns": {"ts": "time"}}, FAIL, "source column 'time' not found"),
    ("tabular-bad-epoch", "tabular", "samples", "a.csv", b"t,v\nsoon,1\n1e30,2\n",
     {"columns": {"ts": "t", "value": "v"}, "series": "s", "units": {"ts": "epoch_s"}}, QUAR,
     "epoch_s"),
    ("tabular-unknown-unit", "tabular", "samples", "a.csv", b"t,v\n1,1\n",
     {"columns": {"ts": "t", "value": "v"}, "series": "s", "units": {"value": "furlongs"}},
     FAIL, "unknown unit"),
    ("prom-binary", "prometheus-text", None, "a.prom", b"\x00\x01\x02metrics", {}, FAIL,
     "binary"),
    ("prom-bad-lines", "prometheus-text", None, "a.prom",
     PROM_OK + b"garbage{{{\nm{a=\"unterminated} 1\n", {}, QUAR, "not a Prometheus sample"),
    ("prom-latin1-line", "prometheus-text", None, "a.prom",
     PROM_OK + b'm{host="caf\xe9"} 1\n', {}, QUAR, "UTF-8"),
    ("prom-long-line", "prometheus-text", None, "a.prom",
     PROM_OK + b"m{a=\"" + b"x" * 100_000 + b"\"} 1\n", {}, QUAR, "longer than"),
    ("prom-bad-timestamp", "prometheus-text", None, "a.prom",
     PROM_OK + b"m 1 99999999999999999\n", {}, QUAR, "timestamp out of range"),
    ("prom-nan-value", "prometheus-text", None, "a.prom", PROM_OK + b"m NaN\n", {}, QUAR,
     "finite"),
    ("prom-markup-label", "prometheus-text", None, "a.prom",
     PROM_OK + b'm{x="<b>\\"\\n</b>\x07"} 1 1772445600000\n' + b"m{le=\"abc\"} 1\n", {}, QUAR,
     "not a Prometheus sample"),
    ("prom-bad-scraped-at", "prometheus-text", None, "a.prom", PROM_OK,
     {"scraped_at": "yesterday"}, FAIL, "scraped_at"),
    ("promjson-truncated", "prometheus-json", None, "a.json", b'{"status":"success","data":{',
     {}, FAIL, "invalid JSON"),
    ("promjson-error-status", "prometheus-json", None, "a.json",
     b'{"status":"error","errorType":"bad_data","error":"parse error"}', {}, FAIL,
     "parse error"),
    ("promjson-wrong-type", "prometheus-json", None, "a.json",
     b'{"resultType":"scalar","result":[1,"2"]}', {}, FAIL, "scalar"),
    ("promjson-bad-points", "prometheus-json", None, "a.json",
     b'{"resultType":"matrix","result":[{"metric":{"__name__":"m"},"values":[[1772445600,"1"],'
     b'["x","2"],[1e20,"3"],[1772445600]]}]}', {}, QUAR, "expected"),
    ("promjson-deep-nesting", "prometheus-json", None, "a.json", b"[" * 100_000 + b"]" * 100_000,
     {}, FAIL, ""),
    ("otlp-truncated", "otlp-json", None, "a.json", (OTLP % SPAN).encode()[:-10], OTLP_OPTS,
     FAIL, "invalid JSON"),
    ("otlp-not-object", "otlp-json", None, "a.json", b"[1, 2, 3]", OTLP_OPTS, FAIL,
     "OTLP/JSON object"),
    ("otlp-wrong-shape", "otlp-json", None, "a.json", b'{"resourceSpans": 5}', OTLP_OPTS, FAIL,
     "resourceSpans"),
    ("otlp-negative-duration", "otlp-json", None, "a.json",
     (OTLP % SPAN.replace("1772445601000000000", "1772445599000000000")).encode(), OTLP_OPTS,
     QUAR, "end_ts is before"),
    ("otlp-span-junk", "otlp-json", None, "a.json",
     (OTLP % (SPAN + ',"junk",{"startTimeUnixNano":"NaN","attributes":[{"key":"gen_ai.x"}]}'))
     .encode(), OTLP_OPTS, QUAR, "span is not an object"),
    ("otlp-missing-priority", "otlp-json", None, "a.json", (OTLP % SPAN).encode(), {"pool": "p"},
     QUAR, "missing required value"),
    ("sacct-binary", "sacct", None, "a.txt", b"\x00\xff" * 100, SACCT, FAIL, "binary"),
    ("sacct-wrong-delimiter", "sacct", None, "a.txt",
     b"1,COMPLETED,2026-03-02T10:00:00,2026-03-02T10:00:00,2026-03-02T11:00:00\n", SACCT, QUAR,
     "expected 5 fields"),
    ("sacct-too-many-fields", "sacct", None, "a.txt",
     b"1|COMPLETED|||||||extra\n2|FAILED|2026-03-02T10:00:00|Unknown|None\n", SACCT, QUAR,
     "expected 5 fields"),
    ("sacct-bad-times", "sacct", None, "a.txt",
     b"1|COMPLETED|2026-13-45T99:00:00|2026-03-02T10:00:00|2026-03-02T09:00:00\n", SACCT, QUAR,
     "ISO-8601"),
    ("sacct-no-state-field", "sacct", None, "a.txt", b"1|x\n", {"fields": "JobID|Partition"},
     FAIL, "no 'state' field"),
    ("sacct-latin1", "sacct", None, "a.txt", b"JobID|State\n1|\xe9t\xe9\n", {}, QUAR,
     "not valid UTF-8"),
    ("nvsmi-empty", "nvidia-smi", None, "a.csv", b"\n\n", {}, FAIL, "empty file"),
    ("nvsmi-garbage-values", "nvidia-smi", None, "a.csv",
     b"timestamp, utilization.gpu [%]\n2026/03/02 10:00:00.000, 50 %\nnot a time, 1 %\n"
     b"2026/03/02 10:00:01.000, [N/A]\n", {}, QUAR, "timestamp"),
    ("trace-unknown-format", "arrival-trace", None, "a.csv", b"a,b\n1,2\n", {}, FAIL,
     "unknown arrival-trace format"),
    ("trace-mooncake-junk-lines", "arrival-trace", None, "a.jsonl",
     b'{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": "x", '
     b'"input_length": -3, "output_length": 1}\nnot json\n', {}, QUAR, "invalid JSON"),
    ("trace-azure-bad-ts", "arrival-trace", None, "a.csv",
     b"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,1,2\nnope,1,2\n",
     {}, QUAR, "ISO-8601"),
]


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("requests", "jobs", "samples", "arrivals")}


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize(("kind", "table", "fname", "content", "opts", "outcome", "why"),
                         [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_hostile_input(tmp_path, kind, table, fname, content, opts, outcome, why):
    d = make_pilot(tmp_path, [(kind, table, fname, content, opts)])
    con = connect(tmp_path / "w.duckdb")
    summary = ingest_pilot(con, load_pilot(d))
    log = con.execute("SELECT file, rows_in, rows_stored, rows_quarantined FROM ingest_log"
                      ).fetchall()
    for _, rows_in, stored, quarantined in log:
        assert rows_in == stored + quarantined
    assert ("good.csv", 1, 1, 0) in log  # the good source always lands
    failed = [(i, f, r) for i, f, r in summary.failed_sources]
    if outcome == FAIL:
        assert [(i, f) for i, f, _ in failed] == [(1, fname)]
        assert why.lower() in failed[0][2].lower()
        assert failed[0][2].strip()  # a reason, never an empty message
        assert _counts(con) == {"requests": 0, "jobs": 0, "samples": 1, "arrivals": 0}
        assert con.execute("SELECT count(*) FROM quarantine WHERE source_index = 1 AND line IS "
                           "NULL").fetchone() == (1,)
    else:
        assert failed == []
        rows = con.execute("SELECT line, field, reason, value FROM quarantine WHERE "
                           "source_index = 1").fetchall()
        assert rows and all(r[0] is not None and r[0] >= 1 for r in rows)
        assert any(why.lower() in r[2].lower() for r in rows), rows
        assert all(v is None or len(v) <= 200 for *_, v in rows)


def test_a_failed_source_leaves_the_warehouse_unchanged(tmp_path, monkeypatch):
    from pipelines.ingest import load, prometheus_text

    big = "\n".join(f'm{{gpu="{i}"}} {i} 1772445600000' for i in range(50)).encode()
    d = make_pilot(tmp_path, [("prometheus-text", None, "a.prom", big, {})])
    con = connect(tmp_path / "w.duckdb")
    ingest_pilot(con, load_pilot(d))
    assert _counts(con)["samples"] == 51
    # the same file, now failing as a whole after 5 chunks were read: nothing of it may land
    (d / "a.prom").write_bytes(big + b"\nBOOM\n")
    monkeypatch.setattr(load, "adapter_context",
                        lambda cfg: AdapterContext(pilot=cfg.pilot, chunk_rows=10))
    orig = prometheus_text._parse_line

    def explode(n, raw, *a):
        if raw.startswith(b"BOOM"):
            raise prometheus_text.SourceError("file truncated mid-write")
        return orig(n, raw, *a)

    monkeypatch.setattr(prometheus_text, "_parse_line", explode)
    summary = ingest_pilot(con, load_pilot(d))
    assert summary.failed_sources[0][2] == "file truncated mid-write"
    assert _counts(con)["samples"] == 1  # the chunks already read were not kept
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)


@pytest.mark.parametrize("bad", ["../etc", "Demo", "a/b", "..", "x" * 70, "a\x00b"])
def test_path_traversal_in_pilot_names_is_refused(tmp_path, bad):
    d = make_pilot(tmp_path, [])
    doc = yaml.safe_load((d / "pilot.yaml").read_text())
    doc["pilot"] = bad
    (d / "pilot.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(PilotConfigError, match="pilot:"):
        load_pilot(d)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "a/../../x", "C:\\x"])
def test_path_traversal_in_source_paths_is_refused(tmp_path, bad):
    d = make_pilot(tmp_path, [])
    doc = yaml.safe_load((d / "pilot.yaml").read_text())
    doc["sources"][0]["path"] = bad
    (d / "pilot.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(PilotConfigError, match=r"sources\[0\]\.path"):
        load_pilot(d)


def test_missing_secret_writes_nothing(tmp_path, monkeypatch):
    d = make_pilot(tmp_path, [])
    con = connect(tmp_path / "w.duckdb")
    monkeypatch.delenv("STABILIS_SECRET")
    from pipelines.anonymize import AnonymizationError

    with pytest.raises(AnonymizationError, match="STABILIS_SECRET"):
        ingest_pilot(con, load_pilot(d))
    assert con.execute("SELECT count(*) FROM information_schema.tables").fetchone() == (0,)


# --- property-based: any input -> rows or clean errors ------------------------------------

KIND_CASES = [
    ("canonical", "samples", "x.csv", {}),
    ("canonical", "requests", "x.jsonl", {}),
    ("tabular", "samples", "x.csv", {"series": "s"}),
    ("prometheus-text", "samples", "x.prom", {"scraped_at": "2026-03-02T00:00:00Z"}),
    ("prometheus-json", "samples", "x.json", {}),
    ("otlp-json", "requests", "x.json", {"all_spans": True}),
    ("sacct", "jobs", "x.txt", {"fields": "JobID|State|Submit|Start|End|AllocTRES"}),
    ("nvidia-smi", "samples", "x.csv", {"scraped_at": "2026-03-02T00:00:00Z"}),
    ("arrival-trace", "arrivals", "x.csv", {}),
    ("arrival-trace", "arrivals", "x.jsonl", {"format": "mooncake"}),
]
SEEDS = {  # realistic starting points the fuzzer mutates
    "x.csv": b"ts,series,value\n2026-03-02T10:00:00Z,a,1\n",
    "x.jsonl": b'{"timestamp": 0, "input_length": 1, "output_length": 2}\n',
    "x.prom": PROM_OK,
    "x.json": (OTLP % SPAN).encode(),
    "x.txt": b"1|COMPLETED|2026-03-02T10:00:00|Unknown|None|gres/gpu=2\n",
}

_texty = st.one_of(
    st.binary(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300).map(lambda s: s.encode()),
    st.sampled_from(list(SEEDS.values())).flatmap(
        lambda seed: st.tuples(st.integers(0, len(seed)), st.binary(max_size=20)).map(
            lambda t: seed[: t[0]] + t[1] + seed[t[0]:])),
    st.lists(st.sampled_from([b"|", b",", b"{", b"}", b'"', b"\n", b"\r\n", b"NaN", b"-1",
                              b"+Inf", b"le=", b"\\", b"\xef\xbb\xbf", b"2026-03-02T10:00:00"]),
             max_size=40).map(b"".join),
)


@pytest.mark.parametrize(("kind", "table", "fname", "opts"), KIND_CASES,
                         ids=[f"{k}-{f}" for k, _, f, _ in KIND_CASES])
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=_texty)
def test_parsers_never_crash(tmp_path, kind, table, fname, opts, data):
    from schemas import validate_frame

    f = tmp_path / fname
    f.write_bytes(data)
    src = Source(kind, fname, table if kind in ("canonical", "tabular") else None, opts)
    try:
        result = ADAPTERS[kind](f, src, AdapterContext(anchor=datetime(2026, 3, 2)))
        for parsed in [result] if isinstance(result, Parsed) else result:
            validate_frame(parsed.table, parsed.frame)
            assert parsed.rows_in >= parsed.rejects.get_column("line").n_unique()
            assert parsed.rejects.get_column("reason").drop_nulls().len() == parsed.rejects.height
    except INPUT_ERRORS as e:
        assert str(e).strip(), f"empty error message from {type(e).__name__}"


def test_seed_span_document_is_valid_json():
    json.loads(OTLP % SPAN)

"""Ingest throughput (rows/s) and peak RSS for the three big-input shapes:

- 10 M canonical request rows (Parquet, streamed in row-group batches),
- a ~1 GB Prometheus text file (dcgm-exporter shaped scrapes),
- a 1 M-span OTLP/JSON file (JSON Lines of export batches, as the collector writes).

Each case runs in its own process so peak RSS (ru_maxrss) is that case's alone. Inputs are
generated into a temp dir. `--small` scales everything down ~100x for a quick check.

    python benchmarks/bench_ingest.py [--small] [--case canonical|prometheus|otlp]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {  # case -> (full, small)
    "canonical": (10_000_000, 100_000),
    "prometheus": (1_000_000_000, 10_000_000),  # bytes
    "otlp": (1_000_000, 10_000),  # spans
}
T0_NS = 1_772_445_600_000_000_000  # 2026-03-02T10:00:00Z


def gen_canonical(d: Path, n: int) -> dict:
    import polars as pl

    (d / "requests").mkdir()
    per = 2_000_000
    for k, start in enumerate(range(0, n, per)):
        m = min(per, n - start)
        i = pl.int_range(start, start + m, eager=True)
        arrival = pl.datetime(2026, 3, 2) + pl.duration(milliseconds=i * 10)
        pl.DataFrame({"i": i}).select(
            request_id=pl.format("req-{}", "i"), attempt=pl.lit(0, pl.Int32),
            pool=pl.format("pool-{}", pl.col("i") % 4), node=pl.format("node-{}", pl.col("i") % 64),
            gpu=pl.format("GPU-{}", pl.col("i") % 512), model_class=pl.lit("llm"),
            priority=pl.lit("P1"), arrival_ts=arrival,
            start_ts=arrival + pl.duration(milliseconds=5),
            end_ts=arrival + pl.duration(milliseconds=200), status=pl.lit("ok"),
            input_tokens=pl.lit(100, pl.Int32), output_tokens=pl.lit(20, pl.Int32),
        ).write_parquet(d / "requests" / f"part-{k:03d}.parquet", row_group_size=500_000)
    return {"kind": "canonical", "table": "requests", "path": "requests/*.parquet"}


def gen_prometheus(d: Path, nbytes: int) -> dict:
    families = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_DEV_POWER_USAGE",
                "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_SM_CLOCK"]
    size, scrape = 0, 0
    with (d / "scrapes.prom").open("w") as fh:
        while size < nbytes:
            ts = 1_772_445_600_000 + scrape * 15_000
            lines = []
            for f in families:
                lines.append(f"# TYPE {f} gauge\n")
                for g in range(64):
                    lines.append(f'{f}{{gpu="{g % 8}",UUID="GPU-{g:04d}",Hostname="node-{g // 8}",'
                                 f'modelName="NVIDIA H100 80GB HBM3"}} {g % 100} {ts}\n')
            block = "".join(lines)
            fh.write(block)
            size += len(block)
            scrape += 1
    return {"kind": "prometheus-text", "path": "scrapes.prom"}


def gen_otlp(d: Path, n: int) -> dict:
    per_batch = 1000
    with (d / "spans.jsonl").open("w") as fh:
        for b in range(0, n, per_batch):
            spans = []
            for i in range(b, min(n, b + per_batch)):
                start = T0_NS + i * 10_000_000
                spans.append({
                    "traceId": f"{i:032x}", "spanId": f"{i:016x}", "name": "llm_request",
                    "kind": 2, "startTimeUnixNano": str(start),
                    "endTimeUnixNano": str(start + 900_000_000),
                    "attributes": [
                        {"key": "gen_ai.request.model", "value": {"stringValue": "llama"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "100"}},
                        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "20"}},
                        {"key": "gen_ai.latency.time_in_queue", "value": {"doubleValue": 0.1}},
                        {"key": "gen_ai.latency.time_to_first_token",
                         "value": {"doubleValue": 0.2}},
                        {"key": "gen_ai.prompt", "value": {"stringValue": "hello " * 8}},
                    ],
                    "status": {},
                })
            doc = {"resourceSpans": [{"resource": {"attributes": [
                {"key": "host.name", "value": {"stringValue": f"node-{b % 64}"}}]},
                "scopeSpans": [{"spans": spans}]}]}
            fh.write(json.dumps(doc) + "\n")
    return {"kind": "otlp-json", "path": "spans.jsonl", "options": {"pool": "pool-a",
                                                                    "priority": "P1"}}


GENERATORS = {"canonical": gen_canonical, "prometheus": gen_prometheus, "otlp": gen_otlp}


def run_case(case: str, size: int) -> dict:
    """Generate, then ingest in this process; returns the numbers."""
    import yaml

    from pipelines.config import load_pilot
    from pipelines.ingest.load import ingest_pilot
    from pipelines.warehouse import connect

    os.environ.setdefault("STABILIS_SECRET", "bench-secret")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "bench"
        d.mkdir()
        t = time.perf_counter()
        src = GENERATORS[case](d, size)
        gen_s = time.perf_counter() - t
        input_bytes = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        (d / "pilot.yaml").write_text(yaml.safe_dump({
            "pilot": "bench", "timezone": "UTC",
            "phases": {"baseline": {"start": "2026-03-02T00:00:00Z",
                                    "end": "2026-03-10T00:00:00Z"},
                       "validation": {"start": "2026-03-10T00:00:00Z",
                                      "end": "2026-03-20T00:00:00Z"}},
            "scope": "all", "sla": {"P1": {"e2e_ms": 500}}, "timeout_ms": 30000,
            "sources": [src], "anonymization": {"secret_env": "STABILIS_SECRET"},
        }))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        con = connect(Path(tmp) / "w.duckdb")
        t = time.perf_counter()
        summary = ingest_pilot(con, load_pilot(d))
        secs = time.perf_counter() - t
        con.close()
    rows_in = sum(f.rows_in for f in summary.files)
    return {
        "case": case, "input_mb": round(input_bytes / 2**20, 1), "rows_in": rows_in,
        "rows_stored": summary.rows_stored, "failed": len(summary.failed_sources),
        "ingest_s": round(secs, 1), "rows_per_s": round(rows_in / secs),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_before_ingest_mb": round(rss_before / 1024), "generate_s": round(gen_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="~100x smaller inputs")
    ap.add_argument("--case", choices=list(SIZES), action="append")
    ap.add_argument("--size", type=int, help="override the case's size (rows, bytes, spans)")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._child:
        print(json.dumps(run_case(a._child, a.size)))
        return
    for case in a.case or list(SIZES):
        size = a.size or SIZES[case][1 if a.small else 0]
        out = subprocess.run([sys.executable, __file__, "--_child", case, "--size", str(size)],
                             capture_output=True, text=True, check=False)
        if out.returncode:
            print(f"{case}: failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['case']:<11} {r['input_mb']:>8} MB in  {r['rows_in']:>11,} rows  "
              f"{r['ingest_s']:>7} s  {r['rows_per_s']:>9,} rows/s  peak RSS "
              f"{r['peak_rss_mb']:>6} MB (before ingest {r['rss_before_ingest_mb']} MB)")


if __name__ == "__main__":
    main()

"""Pilots as real operators have them: one telemetry source kind each, or a small mix.

`make_pilot(root, kind)` writes `root/<kind>/pilot.yaml` plus its telemetry and returns the
folder. Public samples come from tests/fixtures/public (PROVENANCE.md); the rest is written
here, in the exact shape the real exporters produce (vLLM and dcgm-exporter `/metrics`,
Prometheus HTTP API responses, `nvidia-smi --query-gpu --format=csv`, `sacct --parsable2`,
a per-minute aggregated export). Generation is seeded: same kind, same files.

Every generated pilot spans a one-hour baseline and a one-hour validation phase starting at
T0, with pool-a treated (scope) and pool-b as control.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

PUBLIC = Path(__file__).resolve().parent / "fixtures" / "public"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
PHASE = timedelta(hours=1)
POOLS = ("pool-a", "pool-b")
SECRET_ENV = "STABILIS_SECRET"
LATENCY_LE = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, math.inf)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _phases(start: datetime, half: timedelta) -> dict[str, dict[str, str]]:
    return {"baseline": {"start": _iso(start), "end": _iso(start + half)},
            "validation": {"start": _iso(start + half), "end": _iso(start + 2 * half)}}


def write_yaml(folder: Path, pilot: str, sources: list[dict[str, Any]], *,
               phases: dict[str, dict[str, str]] | None = None,
               scope: Any = None, extra: dict[str, Any] | None = None) -> None:
    doc: dict[str, Any] = {
        "pilot": pilot, "title": f"{pilot} pilot", "timezone": "UTC",
        "phases": phases or _phases(T0, PHASE),
        "scope": scope if scope is not None else {"pools": ["pool-a"]},
        "sla": {"P0": {"e2e_ms": 2000}, "P1": {"e2e_ms": 5000}}, "timeout_ms": 30000,
        "adjustments": ["priority_scheduling"],
        "sources": sources, "anonymization": {"secret_env": SECRET_ENV},
    }
    doc.update(extra or {})
    (folder / "pilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


# --- Prometheus text exposition -------------------------------------------------------------

def _labels(d: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in d.items()) + "}"


def _family(lines: list[str], name: str, kind: str, help_: str,
            samples: list[tuple[str, dict[str, str], float, int]]) -> None:
    """One family block: HELP, TYPE, then every sample (name, labels, value, ts_ms)."""
    lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    lines += [f"{n}{_labels(lab)} {v:.6g} {ts}" for n, lab, v, ts in samples]


def _scrape_times(step_s: int) -> list[datetime]:
    n = int(2 * PHASE.total_seconds() // step_s)
    return [T0 + timedelta(seconds=step_s * (i + 1)) for i in range(n)]


def vllm_scrape(path: Path, seed: int = 1) -> None:
    """vLLM `/metrics` every 30 s for two hours and two pools: queue and running gauges,
    request and preemption counters, and the four latency histograms (cumulative)."""
    rng = np.random.default_rng(seed)
    times = _scrape_times(30)
    fams: dict[str, list[tuple[str, dict[str, str], float, int]]] = {}
    hist_names = {"vllm:e2e_request_latency_seconds": 1.0,
                  "vllm:request_queue_time_seconds": 0.4,
                  "vllm:time_to_first_token_seconds": 0.3,
                  "vllm:time_per_output_token_seconds": 0.02}
    for pool in POOLS:
        lab = {"model_name": "llama-3-8b", "pool": pool}
        done = pre = 0.0
        cum = {h: np.zeros(len(LATENCY_LE)) for h in hist_names}
        sums = dict.fromkeys(hist_names, 0.0)
        for t in times:
            ts = int(t.timestamp() * 1000)
            treated = pool == "pool-a" and t >= T0 + PHASE
            burst = 3.0 if (t.minute % 20) < 2 else 1.0
            n = int(rng.poisson(30 * 4.0 * burst))
            done += n
            pre += int(rng.poisson(0.5 * burst))
            waiting = float(rng.poisson(6 * burst * (0.5 if treated else 1.0)))
            fams.setdefault("vllm:num_requests_waiting", []).append(
                ("vllm:num_requests_waiting", lab, waiting, ts))
            fams.setdefault("vllm:num_requests_running", []).append(
                ("vllm:num_requests_running", lab, float(rng.integers(8, 32)), ts))
            fams.setdefault("vllm:request_success_total", []).append(
                ("vllm:request_success_total", {**lab, "finished_reason": "stop"}, done, ts))
            fams.setdefault("vllm:num_preemptions_total", []).append(
                ("vllm:num_preemptions_total", lab, pre, ts))
            for h, scale in hist_names.items():
                x = rng.lognormal(math.log(scale * burst * (0.7 if treated else 1.0)), 0.6, n)
                cum[h] += np.array([(x <= le).sum() for le in LATENCY_LE])
                sums[h] += float(x.sum())
                rows = fams.setdefault(h, [])
                for le, c in zip(LATENCY_LE, cum[h], strict=True):
                    le_s = "+Inf" if math.isinf(le) else f"{le}"
                    rows.append((f"{h}_bucket", {**lab, "le": le_s}, float(c), ts))
                rows.append((f"{h}_sum", lab, sums[h], ts))
                rows.append((f"{h}_count", lab, float(cum[h][-1]), ts))
    lines: list[str] = []
    kinds = {"vllm:num_requests_waiting": "gauge", "vllm:num_requests_running": "gauge",
             "vllm:request_success_total": "counter", "vllm:num_preemptions_total": "counter"}
    for name, samples in fams.items():
        _family(lines, name, kinds.get(name, "histogram"), f"vLLM {name}", samples)
    path.write_text("\n".join(lines) + "\n")


def dcgm_scrape(path: Path, node: str, seed: int) -> None:
    """dcgm-exporter default counters (no DCP profiling fields) every 15 s, four GPUs."""
    rng = np.random.default_rng(seed)
    times = _scrape_times(15)
    fams: dict[str, list[tuple[str, dict[str, str], float, int]]] = {}
    for g in range(4):
        lab = {"gpu": str(g), "UUID": f"GPU-{seed:04d}-{g:04d}-aaaa", "device": f"nvidia{g}",
               "modelName": "NVIDIA H100 80GB HBM3", "Hostname": node}
        energy = 0.0
        for t in times:
            ts = int(t.timestamp() * 1000)
            idle = (t.minute // 10) % 3 == 2 and g >= 2
            util = 3.0 if idle else float(np.clip(rng.normal(78, 12), 0, 100))
            power = 90.0 if idle else 250 + 4 * util
            energy += power * 15 * 1000  # mJ
            fams.setdefault("DCGM_FI_DEV_GPU_UTIL", []).append(
                ("DCGM_FI_DEV_GPU_UTIL", lab, round(util), ts))
            fams.setdefault("DCGM_FI_DEV_POWER_USAGE", []).append(
                ("DCGM_FI_DEV_POWER_USAGE", lab, power, ts))
            fams.setdefault("DCGM_FI_DEV_FB_USED", []).append(
                ("DCGM_FI_DEV_FB_USED", lab, 20000 + 500 * util, ts))
            fams.setdefault("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", []).append(
                ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", lab, energy, ts))
    lines: list[str] = []
    kinds = {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "counter"}
    for name, samples in fams.items():
        _family(lines, name, kinds.get(name, "gauge"), f"dcgm {name}", samples)
    path.write_text("\n".join(lines) + "\n")


# --- Prometheus HTTP API -------------------------------------------------------------------

def prom_instant(path: Path, at: datetime, seed: int) -> None:
    """A whole `/api/v1/query` response: an instant vector of GPU utilization, 8 GPUs."""
    rng = np.random.default_rng(seed)
    result = [{"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": str(g % 4),
                          "UUID": f"GPU-{g:04d}", "Hostname": f"node-{g // 4}",
                          "pool": POOLS[g // 4]},
               "value": [at.timestamp(), f"{float(rng.integers(5, 100))}"]} for g in range(8)]
    path.write_text(json.dumps({"status": "success",
                                "data": {"resultType": "vector", "result": result}}))


def prom_range_bare(path: Path, seed: int = 3) -> None:
    """The bare `result` array of a `/api/v1/query_range` matrix, as client libraries save
    it: GPU utilization per GPU and vLLM queue depth per pool, 60 s step, two hours."""
    rng = np.random.default_rng(seed)
    times = [t.timestamp() for t in _scrape_times(60)]
    result: list[dict[str, Any]] = []
    for g in range(8):
        pool = POOLS[g // 4]
        vals = np.clip(rng.normal(70, 20, len(times)), 0, 100)
        result.append({"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": str(g % 4),
                                  "UUID": f"GPU-{g:04d}", "Hostname": f"node-{g // 4}",
                                  "pool": pool},
                       "values": [[t, f"{v:.0f}"] for t, v in zip(times, vals, strict=True)]})
    for pool in POOLS:
        q = rng.poisson(5, len(times))
        result.append({"metric": {"__name__": "vllm:num_requests_waiting", "pool": pool,
                                  "model_name": "llama-3-8b"},
                       "values": [[t, f"{v}"] for t, v in zip(times, q, strict=True)]})
    path.write_text(json.dumps(result))


# --- nvidia-smi, sacct, aggregated series ----------------------------------------------------

def nvidia_smi_log(path: Path, seed: int = 4) -> None:
    """`nvidia-smi --query-gpu=timestamp,index,uuid,utilization.gpu,power.draw,memory.used
    --format=csv -l 10` for two GPUs over two hours."""
    rng = np.random.default_rng(seed)
    lines = ["timestamp, index, uuid, utilization.gpu [%], power.draw [W], memory.used [MiB]"]
    for t in _scrape_times(10):
        for g in range(2):
            idle = (t.minute // 15) % 2 == 1 and g == 1
            u = 0 if idle else int(np.clip(rng.normal(85, 10), 0, 100))
            lines.append(f"{t:%Y/%m/%d %H:%M:%S}.000, {g}, GPU-5e1f-{g:04d}, {u} %, "
                         f"{80 + 5 * u:.2f} W, {30000 + 100 * u} MiB")
    path.write_text("\n".join(lines) + "\n")


SACCT_HEADER = "JobID|JobName|State|Partition|Priority|Submit|Eligible|Start|End|NodeList|AllocTRES"


def sacct_dump(path: Path, seed: int = 5) -> None:
    """`sacct --parsable2` with a header: batch jobs on the pilot's GPU nodes, steps folded."""
    rng = np.random.default_rng(seed)
    lines = [SACCT_HEADER]
    for j in range(40):
        submit = T0 + timedelta(minutes=float(rng.uniform(0, 110)))
        start = submit + timedelta(seconds=float(rng.exponential(90)))
        end = start + timedelta(minutes=float(rng.uniform(2, 25)))
        node = f"gpu-node-{j % 2 + 1:03d}"
        f = "%Y-%m-%dT%H:%M:%S"
        lines.append(f"{7000 + j}|train|COMPLETED|gpu|{1000 + j}|{submit:{f}}|{submit:{f}}|"
                     f"{start:{f}}|{end:{f}}|{node}|cpu=16,gres/gpu=2,node=1")
        lines.append(f"{7000 + j}.batch|batch|COMPLETED|||||{start:{f}}|{end:{f}}|{node}|"
                     "cpu=16,gres/gpu=2,node=1")
    path.write_text("\n".join(lines) + "\n")


AGG_COLUMNS = ("ts", "pool", "request_rate", "queue_time_ms", "queue_size",
               "model_latency_p95_ms", "pipeline_latency_p95_ms", "pipeline_latency_mean_ms",
               "gpu_duty_pct", "gpu_mem_mib")
# aggregated column -> (canonical series, value unit)
AGG_SERIES = {
    "request_rate": ("arrival_rate", None),
    "queue_time_ms": ("queue_time_mean_s", "ms"),
    "queue_size": ("queue_waiting", None),
    "model_latency_p95_ms": ("model_latency_p95_s", "ms"),
    "pipeline_latency_p95_ms": ("e2e_latency_p95_s", "ms"),
    "pipeline_latency_mean_ms": ("e2e_latency_mean_s", "ms"),
    "gpu_duty_pct": ("gpu_util", "percent"),
    "gpu_mem_mib": ("mem_used_bytes", "MiB"),
}


def aggregated_csv(path: Path, seed: int = 6) -> None:
    """A production dashboard export: one row per pool and minute, aggregates only."""
    rng = np.random.default_rng(seed)
    rows = [",".join(AGG_COLUMNS)]
    for m in range(120):
        t = T0 + timedelta(minutes=m)
        for pool in POOLS:
            treated = pool == "pool-a" and m >= 60
            burst = 2.5 if m % 20 < 2 else 1.0
            rate = rng.normal(40 * burst, 3)
            q = rng.lognormal(math.log(300 * burst * (0.6 if treated else 1.0)), 0.3)
            model = rng.lognormal(math.log(700), 0.2)
            rows.append(f"{int(t.timestamp())},{pool},{rate:.2f},{q:.1f},"
                        f"{rng.poisson(8 * burst)},{model:.1f},{model + 2.5 * q:.1f},"
                        f"{0.8 * model + q:.1f},{np.clip(rng.normal(75, 10), 0, 100):.1f},"
                        f"{30000 + rng.integers(0, 4000)}")
    path.write_text("\n".join(rows) + "\n")


# --- pilots ----------------------------------------------------------------------------------

def _vllm(d: Path) -> None:
    vllm_scrape(d / "vllm-metrics.prom")
    write_yaml(d, d.name, [{"kind": "prometheus-text", "path": "vllm-metrics.prom"}])


def _dcgm_sources(d: Path) -> list[dict[str, Any]]:
    out = []
    for i, pool in enumerate(POOLS):
        dcgm_scrape(d / f"dcgm-{pool}.prom", f"gpu-node-{i + 1:03d}", seed=10 + i)
        out.append({"kind": "prometheus-text", "path": f"dcgm-{pool}.prom",
                    "options": {"pool": pool}})
    return out


def _dcgm(d: Path) -> None:
    write_yaml(d, d.name, _dcgm_sources(d))


def _prom_instant(d: Path) -> None:
    prom_instant(d / "query-baseline.json", T0 + PHASE / 2, seed=7)
    prom_instant(d / "query-validation.json", T0 + PHASE * 1.5, seed=8)
    write_yaml(d, d.name, [{"kind": "prometheus-json", "path": "query-*.json"}])


def _prom_range(d: Path) -> None:
    prom_range_bare(d / "query_range.json")
    write_yaml(d, d.name, [{"kind": "prometheus-json", "path": "query_range.json"}])


SACCT_PUBLIC = PUBLIC / "slurm" / "sacct_parsable2_noheader_aws-hpc-cost-simulator_v2.txt"
SACCT_PUBLIC_FIELDS = (
    "State|JobID|ReqCPUS|ReqMem|ReqNodes|Constraints|Submit|Eligible|Start|Elapsed|Suspended|"
    "End|ExitCode|DerivedExitCode|AllocNodes|NCPUS|MaxDiskRead|MaxDiskWrite|MaxPages|MaxRSS|"
    "MaxVMSize|CPUTime|UserCPU|SystemCPU|TotalCPU|Partition")


def _sacct(d: Path) -> None:
    """The public AWS sample (12 days of February 2022), one pool for all its jobs."""
    shutil.copy(SACCT_PUBLIC, d / "sacct.txt")
    start = datetime(2022, 2, 18, tzinfo=UTC)
    write_yaml(d, d.name, [{"kind": "sacct", "path": "sacct.txt",
                            "options": {"fields": SACCT_PUBLIC_FIELDS, "pool": "pool-a"}}],
               phases=_phases(start, timedelta(days=6)))


def _nvidia_smi(d: Path) -> None:
    nvidia_smi_log(d / "nvidia-smi.csv")
    write_yaml(d, d.name, [{"kind": "nvidia-smi", "path": "nvidia-smi.csv",
                            "options": {"pool": "pool-a", "node": "gpu-node-001"}}])


def _azure(d: Path) -> None:
    shutil.copy(PUBLIC / "traces" / "AzureLLMInferenceTrace_conv.csv", d / "azure.csv")
    start = datetime(2023, 11, 16, 18, 15, tzinfo=UTC)
    # a declared service model lets the what-if replay the trace (modeled, labelled so)
    whatif = {"service": {"distribution": "lognormal", "mean_s": 1.2, "cv": 0.8},
              "gpus": 8, "concurrency_per_gpu": 4}
    write_yaml(d, d.name, [{"kind": "arrival-trace", "path": "azure.csv"}],
               phases=_phases(start, timedelta(minutes=30)), scope="all",
               extra={"whatif": whatif})


def _mooncake(d: Path) -> None:
    shutil.copy(PUBLIC / "traces" / "synthetic_trace.jsonl", d / "mooncake.jsonl")
    write_yaml(d, d.name, [{"kind": "arrival-trace", "path": "mooncake.jsonl"}],
               phases=_phases(T0, timedelta(minutes=9)), scope="all")


def _aggregated_sources() -> list[dict[str, Any]]:
    out = []
    for col, (series, unit) in AGG_SERIES.items():
        units = {"ts": "epoch_s", **({"value": unit} if unit else {})}
        out.append({"kind": "tabular", "table": "samples", "path": "dashboard.csv",
                    "options": {"columns": {"ts": "ts", "pool": "pool", "value": col},
                                "series": series, "units": units}})
    return out


def _aggregated(d: Path) -> None:
    aggregated_csv(d / "dashboard.csv")
    write_yaml(d, d.name, _aggregated_sources())


def _gpu_sched(d: Path) -> None:
    sacct_dump(d / "sacct.txt")
    write_yaml(d, d.name, [*_dcgm_sources(d),
                           {"kind": "sacct", "path": "sacct.txt", "options": {"pool": "pool-a"}}])


def _hist_gpu(d: Path) -> None:
    vllm_scrape(d / "vllm-metrics.prom")
    write_yaml(d, d.name, [{"kind": "prometheus-text", "path": "vllm-metrics.prom"},
                           *_dcgm_sources(d)])


def _trace_jobs(d: Path) -> None:
    shutil.copy(PUBLIC / "traces" / "synthetic_trace.jsonl", d / "mooncake.jsonl")
    sacct_dump(d / "sacct.txt")
    write_yaml(d, d.name, [{"kind": "arrival-trace", "path": "mooncake.jsonl"},
                           {"kind": "sacct", "path": "sacct.txt", "options": {"pool": "pool-a"}}],
               phases=_phases(T0, timedelta(minutes=9)), scope="all")


KINDS: dict[str, Callable[[Path], None]] = {
    "vllm-scrape": _vllm,
    "dcgm-scrape": _dcgm,
    "prom-instant": _prom_instant,
    "prom-range": _prom_range,
    "sacct-only": _sacct,
    "nvidia-smi": _nvidia_smi,
    "azure-trace": _azure,
    "mooncake-trace": _mooncake,
    "aggregated": _aggregated,
    "gpu-sched": _gpu_sched,
    "hist-gpu": _hist_gpu,
    "trace-jobs": _trace_jobs,
}


def make_pilot(root: Path, kind: str) -> Path:
    d = root / kind
    d.mkdir(parents=True, exist_ok=True)
    KINDS[kind](d)
    return d


if __name__ == "__main__":  # python -m tests.pilot_kinds DIR [KIND ...]: write pilots
    import sys

    out = Path(sys.argv[1])
    for k in sys.argv[2:] or KINDS:
        print(make_pilot(out, k))

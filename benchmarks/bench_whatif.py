"""What-if simulator throughput per policy, and a replay of the public Azure trace.

    python benchmarks/bench_whatif.py [--scale 0.25] [--trace PATH] [--gpus 16]

1. Attempts simulated per second of event loop (one core, routing pre-pass included) for each
   policy set on the demo cluster (`demo_config(scale)`), all pools under that policy. Goal:
   >= 100 k attempts/s.
2. The Azure LLM inference conversation trace (1 h, ~19 k requests) replayed on `--gpus` GPU
   slots with a lognormal service model under today's policy and burst buffering, measured by
   the metric SQL (`run_whatif`, trace mode), with the wall time of each stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from pipelines.simulator import demo_config, run_engine
from pipelines.simulator.model import PolicyWindow
from pipelines.simulator.policies import policy_set

POLICIES = ("fifo_shared", "batch_separation", "priority", "burst_buffering", "segmentation",
            "jsq", "power_of_two", "random_routing", "batch_separation+priority",
            "priority+segmentation+burst_buffering+jsq")
AZURE = str(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "public" / "traces"
            / "AzureLLMInferenceTrace_conv.csv")


def bench_policies(scale: float, seed: int) -> None:
    base = demo_config(seed, scale)
    print(f"demo cluster, scale {scale}: {len(base.pools)} pools, "
          f"{sum(p.nodes for p in base.pools) * base.gpus_per_node} GPUs, "
          f"{base.duration_s / 3600:.2f} h simulated")
    # CPU time of this process: on a shared machine the wall clock also counts other jobs
    print(f"{'policy set':<44} {'attempts':>10} {'loop s':>8} {'attempts/s':>12} "
          f"{'cpu s':>7} {'attempts/cpu-s':>15}")
    for name in POLICIES:
        ps = policy_set(name.split("+"))
        cfg = dataclasses.replace(base, policy={p.name: (PolicyWindow(0, ps),)
                                                for p in base.pools})
        c0 = time.process_time()
        run = run_engine(cfg)
        cpu = time.process_time() - c0
        dt = run.timings["engine_s"]
        cpu_loop = cpu * dt / (dt + run.timings["workload_s"])  # share of the loop
        print(f"{name:<44} {run.attempts:>10,d} {dt:>8.2f} {run.attempts / dt:>12,.0f} "
              f"{cpu_loop:>7.2f} {run.attempts / cpu_loop:>15,.0f}")


def bench_trace(path: str, gpus: int, service: str) -> None:
    import polars as pl

    from pipelines.config import DEFAULT_THRESHOLDS, PRIORITIES
    from pipelines.whatif import run_whatif
    from pipelines.whatif.replay import read_trace, trace_replay

    t0 = time.perf_counter()
    df = read_trace(path, "azure")
    t1 = time.perf_counter()
    rep = trace_replay(df, service, gpus, timeout_ms=60_000)
    config = {
        "sla_targets": pl.DataFrame({"priority": list(PRIORITIES), "e2e_ms": [20_000.0] * 4,
                                     "ttft_ms": [None] * 4},
                                    schema_overrides={"ttft_ms": pl.Float64}),
        "pilot_scope": pl.DataFrame({"kind": ["all"]}),
        "thresholds": pl.DataFrame({"name": list(DEFAULT_THRESHOLDS),
                                    "value": [float(v) for v in DEFAULT_THRESHOLDS.values()]}),
    }
    run = run_whatif(None, "trace", ["burst_buffering"], seeds=(1,), rep=rep, config=config)
    t2 = time.perf_counter()
    span = (df["ts"].max() - df["ts"].min()).total_seconds() / 3600
    print(f"\nAzure conversation trace: {df.height:,} requests over {span:.2f} h, {gpus} GPU "
          f"slots, service {service}, timeout 60 s")
    print(f"  read {t1 - t0:.2f} s; replay + measure ({run.attempts:,} attempts, 2 replays) "
          f"{t2 - t1:.2f} s: " + ", ".join(f"{k} {v:.2f}" for k, v in run.timings.items()))
    r = run.results.filter((pl.col("segment") == "all") & (pl.col("breakdown") == "overall")
                           & pl.col("metric").is_in(["p50_latency_s", "p95_latency_s",
                                                     "queue_wait_p95_s", "timeout_drop_rate",
                                                     "sla_adherence", "nominal_util"]))
    for row in r.sort("policy", "metric").iter_rows(named=True):
        print(f"  {row['policy']:<16} {row['metric']:<18} {row['predicted_value']:>10.4g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--trace", default=AZURE)
    ap.add_argument("--gpus", type=int, default=16)
    ap.add_argument("--service", default="lognormal:1500,0.8")
    a = ap.parse_args()
    bench_policies(a.scale, a.seed)
    bench_trace(a.trace, a.gpus, a.service)


if __name__ == "__main__":
    main()

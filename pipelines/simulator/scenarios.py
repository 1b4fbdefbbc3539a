"""Ready-made configurations: the demo pilot cluster and a pure M/M/c pool."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

from pipelines.simulator.model import (
    ArrivalSpec,
    ClientSpec,
    JobSpec,
    PolicyWindow,
    PoolSpec,
    ServiceProfile,
    SimConfig,
)
from pipelines.simulator.policies import Policy
from pipelines.simulator.workload import ScriptedEpisodes

# One GPU slot serves one attempt at a time, so a slot's "service" is the whole generation.
# SM efficiency (useful kernel share of a busy second) is graded so that hidden GPU occupancy
# loss has contrast across pools: memory-bound LLM decoding keeps GPUs "busy" at low SM
# activity (the LLM-heavy pools a, b, d lose > 10 pp), compute-bound vision, multimodal
# encoders and tabular prediction models do not (pools c, e stay below).
DEMO_SERVICES: dict[str, ServiceProfile] = {
    "llm": ServiceProfile(800, 0.9, 200, 0.7, 40, 0.12, 17.0, sm_efficiency=0.55),
    "multimodal": ServiceProfile(1500, 0.5, 120, 0.7, 60, 0.20, 18.0, sm_efficiency=0.92),
    "vision": ServiceProfile(1000, 0.3, 30, 0.6, 50, 0.15, 12.0, sm_efficiency=0.94),
    "prediction": ServiceProfile(400, 0.8, None, 0.0, 80, 1.2, 0.0, sm_efficiency=0.94),
    "other": ServiceProfile(500, 1.0, 60, 1.0, 30, 0.10, 11.0, sm_efficiency=0.9),
}

# (name, nodes, model mix, jobs per hour, reserved nodes, target request utilisation)
DEMO_POOLS: tuple[tuple[str, int, dict[str, float], float, int, float], ...] = (
    ("pool-a", 11, {"llm": 0.85, "other": 0.15}, 3.0, 2, 0.5),
    ("pool-b", 8, {"llm": 0.45, "multimodal": 0.45, "other": 0.10}, 3.0, 1, 0.5),
    ("pool-c", 5, {"vision": 0.4, "multimodal": 0.5, "other": 0.1}, 2.5, 1, 0.5),
    ("pool-d", 4, {"prediction": 0.4, "llm": 0.3, "other": 0.3}, 2.5, 1, 0.5),
    # short requests on a pool run hotter than the others: its bursts' queue waits outweigh
    # its service times in the baseline (delay index > 0.5: non-productive waiting)
    ("pool-e", 4, {"other": 0.6, "prediction": 0.4}, 2.0, 1, 0.6),
)
DEMO_TREATMENT_POOLS: tuple[str, ...] = ("pool-c", "pool-d")
# Energy-latency mismatch ground truth: a control pool's GPUs draw a fixed ~560 W whatever the
# load for the whole pilot (clocks pinned), in both phases so that the control's energy per
# good request does not move between phases for a reason the treatment does not share; the
# detector judges pool x phase units.
DEMO_POWER_HOLD: tuple[str, float] = ("pool-e", 560.0)
DEMO_START = datetime(2026, 3, 2)
DEMO_DURATION_S = 6 * 3600.0  # baseline 4 h + validation 2 h
# Compressed pilot: one 24 h daily cycle is played in duration / 3 (2 h at scale 1), so the
# baseline holds two "days" and the validation one, and both see the same load pattern.
# Batch jobs hold a minority of each pool's time (~20-35 %), so a detector that flags "a job
# ran" cannot score by chance; sizes are graded from one GPU (harmless) to a whole node.
DEMO_JOBS = JobSpec(duration_median_s=420.0, duration_sigma=0.6, duration_range_s=(120.0, 2400.0),
                    clump_mean=1.2)
# Graded bursts (weak ones are not bursts by burst_factor, strong ones overload the pool),
# scripted idle->overload oscillations and service slowdowns (timeouts, retries).
# Episodes of a pool are kept >= 16 min apart, so each has a calm trailing window.
# Strengths are moderate (bursts x1.2-2.5, oscillation surges x3 for 90 s, slowdowns x2.5-4
# for 1-2 min) so that abandonment stays a few % and the queue-wait P95 stays below the 15 s
# cap: the strongest episodes still overload their pool, the weakest do not.
DEMO_EPISODES = ScriptedEpisodes(
    per_hour=3.0, duration_s=(60, 180), multiplier=(1.2, 2.5), cascade_prob=0.15,
    oscillations_per_hour=0.4, surge_multiplier=3.0, surge_s=90.0, slowdowns_per_hour=0.3,
    slowdown_s=(60.0, 120.0), slowdown_factor=(2.5, 4.0), quiet_s=960.0,
)
DEMO_CLIENT = ClientSpec(
    timeout_ms=30_000, max_queue_ms=15_000, retry_prob=0.7, backoff_ms=2_000,
    max_attempts=3, error_rate=0.003, cancel_rate=0.001, dispatch_latency_ms=1.5,
)


def mix_mean_service_s(mix: dict[str, float], services: dict[str, ServiceProfile]) -> float:
    total = sum(mix.values())
    return sum(w / total * services[c].mean_service_s() for c, w in mix.items())


def job_gpu_demand(spec: JobSpec, jobs_per_hour: float) -> float:
    """Mean number of GPUs held by jobs (Little's law; duration clip ignored)."""
    e_gpus = sum(g * p for g, p in zip(spec.gpus_choices, spec.gpus_probs, strict=True))
    e_dur = spec.duration_median_s * math.exp(spec.duration_sigma**2 / 2)
    return jobs_per_hour / 3600 * e_gpus * e_dur


def demo_validation_start_s(cfg: SimConfig) -> float:
    """Start of the validation phase (seconds after cfg.start) of a demo configuration."""
    return max(w.start_s for w in cfg.windows_for(DEMO_TREATMENT_POOLS[0]))


def demo_config(seed: int = 7, scale: float = 1.0) -> SimConfig:
    """The demo pilot cluster: 5 pools, 256 GPUs, ~6 h compressed pilot at scale 1.

    `scale` shrinks the request volume: duration and GPUs both shrink by sqrt(scale) (at least
    two nodes per pool), so per-GPU load, and hence queueing behaviour, stay comparable.
    """
    if not 0 < scale <= 4:
        raise ValueError("scale must be in (0, 4]")
    f = math.sqrt(scale)
    duration = max(60.0, round(DEMO_DURATION_S * f / 60) * 60)  # whole sample windows
    pools = []
    for name, nodes, mix, jobs_ph, reserved, util in DEMO_POOLS:
        n = max(2, round(nodes * f))
        jph = jobs_ph * n / nodes
        free = n * 8 - job_gpu_demand(DEMO_JOBS, jph)
        rate = util * free / mix_mean_service_s(mix, DEMO_SERVICES)
        pools.append(PoolSpec(name, n, rate, mix, jobs_per_hour=jph,
                              reserved_nodes=min(reserved, n - 1)))
    validation = round(duration * 2 / 3 / 60) * 60.0  # baseline 2/3, validation 1/3
    treat = frozenset({Policy.PRIORITY, Policy.BATCH_SEPARATION})
    fifo = frozenset({Policy.FIFO_SHARED})
    policy = {p: (PolicyWindow(0.0, fifo), PolicyWindow(validation, treat))
              for p in DEMO_TREATMENT_POOLS}
    hold_pool, hold_w = DEMO_POWER_HOLD
    episodes = replace(DEMO_EPISODES, power_holds=((hold_pool, 0.0, duration, hold_w),))
    return SimConfig(
        start=DEMO_START,
        duration_s=duration,
        pools=tuple(pools),
        services=DEMO_SERVICES,
        arrivals=ArrivalSpec(
            burstiness=0.7, daily_amplitude=0.25, day_period_s=duration / 3,
            bursts=episodes,
        ),
        client=DEMO_CLIENT,
        jobs=DEMO_JOBS,
        policy=policy,
        seed=seed,
    )


def mmc_config(
    c: int = 4, rho: float = 0.8, arrivals: int = 200_000, mean_service_s: float = 1.0,
    seed: int = 1,
) -> SimConfig:
    """A pure M/M/c pool: Poisson arrivals, exponential service, nothing else."""
    lam = rho * c / mean_service_s
    return SimConfig(
        start=DEMO_START,
        duration_s=arrivals / lam,
        pools=(PoolSpec("pool-mmc", 1, lam, {"other": 1.0}, reserved_nodes=0),),
        gpus_per_node=c,  # one node of c GPU slots
        services={"other": ServiceProfile(100, 0.1, None, 0.0, 1, 0.0, 0.0)},
        service_model="exponential",
        exp_service_s=mean_service_s,
        telemetry=False,
        seed=seed,
    )

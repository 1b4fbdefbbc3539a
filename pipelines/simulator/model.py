"""Configuration and intermediate data of the simulator (plain, frozen dataclasses).

All simulated times are integer microseconds since the simulation start: the output tables
use microsecond timestamps, and integer keys keep the event heaps fast and exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from pipelines.simulator.policies import Policy

PRIORITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3")
MODEL_CLASSES: tuple[str, ...] = ("llm", "vision", "multimodal", "prediction", "other")
STATUSES: tuple[str, ...] = ("ok", "timeout", "dropped", "error", "cancelled")
OK, TIMEOUT, DROPPED, ERROR, CANCELLED = range(5)
JOB_STATES: tuple[str, ...] = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")

US = 1_000_000  # microseconds per second


@dataclass(frozen=True)
class ServiceProfile:
    """Service-time model of one model class: size-dependent prefill + decode, with noise.

    Tokens are lognormal (median, sigma). `output_median=None` means a non-generative model
    (no output tokens, no first token). Service = (base + in*prefill + out*decode) * noise.
    """

    input_median: float
    input_sigma: float
    output_median: float | None
    output_sigma: float
    base_ms: float
    prefill_ms_per_token: float
    decode_ms_per_token: float
    noise_sigma: float = 0.15
    sm_efficiency: float = 0.65  # sm_active per busy second (useful share of kernel time)
    max_tokens: int = 32_768

    def mean_service_s(self) -> float:
        """Analytic mean (ignores the max_tokens clip, which is far in the tail)."""
        e_in = self.input_median * np.exp(self.input_sigma**2 / 2)
        e_out = 0.0
        if self.output_median is not None:
            e_out = self.output_median * np.exp(self.output_sigma**2 / 2)
        ms = self.base_ms + e_in * self.prefill_ms_per_token + e_out * self.decode_ms_per_token
        return float(ms / 1000 * np.exp(self.noise_sigma**2 / 2))


@dataclass(frozen=True)
class BurstSpec:
    """Injected burst episodes: Poisson starts per pool, rate multiplier for a duration."""

    per_hour: float = 2.0
    duration_s: tuple[float, float] = (60.0, 300.0)
    multiplier: tuple[float, float] = (1.8, 3.0)
    cascade_prob: float = 0.3  # chance an episode also hits another pool a little later
    cascade_lag_s: tuple[float, float] = (30.0, 180.0)


@dataclass(frozen=True)
class ArrivalSpec:
    """Gamma renewal arrivals (shape k = burstiness) modulated by a daily curve and bursts."""

    burstiness: float = 1.0  # k=1 Poisson, k<1 burstier (vLLM --burstiness)
    daily_amplitude: float = 0.0  # rate * (1 + a*sin(...)), mean-preserving over a full day
    day_period_s: float = 86_400.0  # a demo may compress a day; 86 400 is the real thing
    peak_fraction: float = 0.58  # time of the daily peak as a fraction of the day (~14:00)
    bursts: BurstSpec | None = None


@dataclass(frozen=True)
class ClientSpec:
    """Client behaviour: timeouts, queue abandonment, retries with backoff, failures."""

    timeout_ms: float | None = None  # None = no timeout
    max_queue_ms: float | None = None  # waiting longer than this => dropped (None = never)
    retry_prob: float = 0.0  # share of timed-out/dropped attempts the client retries
    backoff_ms: float = 1_000.0  # base backoff, doubled per attempt, jittered x U(0.5, 1.5)
    max_attempts: int = 3
    error_rate: float = 0.0  # attempts failing mid-service with status `error`
    cancel_rate: float = 0.0  # attempts cancelled by the client mid-service
    dispatch_latency_ms: float = 0.0  # mean scheduler decision latency before start


@dataclass(frozen=True)
class JobSpec:
    """Slurm-like batch/training jobs holding 1-8 GPUs of a pool for minutes to hours."""

    gpus_choices: tuple[int, ...] = (1, 2, 4, 8)
    gpus_probs: tuple[float, ...] = (0.35, 0.3, 0.2, 0.15)
    duration_median_s: float = 900.0
    duration_sigma: float = 0.8
    duration_range_s: tuple[float, float] = (120.0, 4 * 3600.0)
    training_share: float = 0.35
    stalled_share: float = 0.2  # jobs that hold GPUs but do little useful work
    efficiency: tuple[float, float] = (0.55, 0.85)
    stalled_efficiency: tuple[float, float] = (0.10, 0.25)
    util_level: tuple[float, float] = (0.92, 1.0)  # gpu_util while held (kernels resident)
    clump_mean: float = 1.0  # jobs per submission (sweeps, array jobs): 1 = independent
    clump_spread_s: float = 30.0  # jobs of one submission arrive within this many seconds


@dataclass(frozen=True)
class PoolSpec:
    """One GPU pool: whole nodes, its traffic and its batch-job load."""

    name: str
    nodes: int
    rate_per_s: float  # mean request arrival rate (before daily curve and bursts)
    model_mix: Mapping[str, float]
    priority_mix: tuple[float, float, float, float] = (0.1, 0.25, 0.4, 0.25)
    jobs_per_hour: float = 0.0
    reserved_nodes: int = 1  # nodes reserved for batch jobs under batch_separation


@dataclass(frozen=True)
class PolicyWindow:
    """From `start_s` (seconds after simulation start) on, a pool runs `policies`."""

    start_s: float
    policies: frozenset[Policy]


@dataclass(frozen=True)
class SimConfig:
    start: datetime  # naive UTC
    duration_s: float
    pools: tuple[PoolSpec, ...]
    services: Mapping[str, ServiceProfile]
    arrivals: ArrivalSpec = ArrivalSpec()
    client: ClientSpec = ClientSpec()
    jobs: JobSpec = JobSpec()
    # Per pool name; pools not listed run fifo_shared throughout.
    policy: Mapping[str, tuple[PolicyWindow, ...]] = field(default_factory=dict)
    # "tokens", or for closed-form checks "exponential" | "deterministic" | "lognormal"
    # (mean exp_service_s; lognormal log-sd service_sigma)
    service_model: str = "tokens"
    exp_service_s: float = 1.0
    service_sigma: float = 1.0
    gpus_per_node: int = 8
    sample_window_s: float = 60.0
    telemetry: bool = True
    seed: int = 0

    def windows_for(self, pool: str) -> tuple[PolicyWindow, ...]:
        return self.policy.get(pool) or (PolicyWindow(0.0, frozenset({Policy.FIFO_SHARED})),)


@dataclass
class PoolWorkload:
    """First attempts of one pool, sorted by arrival; retries are created by the engine."""

    arrival_us: np.ndarray  # int64
    priority: np.ndarray  # int8, 0..3
    model_class: np.ndarray  # int8, index into MODEL_CLASSES
    input_tokens: np.ndarray  # int32
    output_tokens: np.ndarray  # int32, -1 = none
    service_us: np.ndarray  # int64, >= 1
    prefill_us: np.ndarray  # int64, time to first token; -1 = no first token
    bursts: list[tuple[float, float, float]]  # (start_s, end_s, multiplier) injected

    def __len__(self) -> int:
        return len(self.arrival_us)


@dataclass
class PoolJobs:
    """Batch/training jobs of one pool, sorted by submit time."""

    submit_us: np.ndarray  # int64
    gpus: np.ndarray  # int32
    duration_us: np.ndarray  # int64
    kind: np.ndarray  # str: batch|training
    state: np.ndarray  # str: JOB_STATES
    priority: np.ndarray  # float64, Slurm-like priority number
    efficiency: np.ndarray  # float64, sm_active per held second
    util_level: np.ndarray  # float64, gpu_util per held second
    stalled: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.submit_us)


@dataclass
class PoolOutcome:
    """What the engine decided for one pool (local GPU indices, -1 = none)."""

    arrival_us: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray  # for never-started drops: the abandonment time (null in tables)
    gpu: np.ndarray
    status: np.ndarray
    root: np.ndarray  # first attempt's slot (== own slot on first attempts)
    attempt: np.ndarray
    job_start_us: np.ndarray  # -1 = never started within the run
    job_end_us: np.ndarray
    job_gpus: list[list[int]]

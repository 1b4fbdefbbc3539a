"""A real Prometheus for tests: series generated as OpenMetrics text, backfilled into a TSDB
with `promtool tsdb create-blocks-from openmetrics`, served by `prometheus` on 127.0.0.1 on a
free port (Debian package `prometheus`; `make setup` installs it where apt exists).

The series are what the demo's vLLM servers and dcgm-exporters expose, for two pools over an
hour and five minutes (from T0 - 5 min: the first points of the hour have their look-back):
vLLM queue gauges, request/preemption counters and the four latency histograms every 30 s,
and the DCGM utilization, power, memory and energy of two GPUs per pool every 15 s (the pool
as a label, as a Prometheus relabel rule adds it). Two more series, `stabilis_test_a` and
`stabilis_test_b`, have the same labels, b only in the second half-hour, so that
`rate({__name__=~"stabilis_test_.*"}[5m])` executes on the first half and fails (HTTP 422,
same label set) on the second: a window the server cannot execute.
"""

from __future__ import annotations

import base64
import math
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
POOLS = ("pool-a", "pool-b")
LE = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
HISTOGRAMS = {"vllm:e2e_request_latency_seconds": 1.0, "vllm:request_queue_time_seconds": 0.4,
              "vllm:time_to_first_token_seconds": 0.3, "vllm:time_per_output_token_seconds": 0.02}


def missing() -> str | None:
    """Why no server can be started here, or None."""
    absent = [b for b in ("prometheus", "promtool") if shutil.which(b) is None]
    if absent:
        return (f"{' and '.join(absent)} not installed (Debian package `prometheus`; "
                "`make setup` installs it where apt exists)")
    return None


def _labels(d: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in d.items()) + "}"


def openmetrics(path: Path, seed: int = 11) -> int:
    """Write the series as OpenMetrics text (no metadata: every family untyped, which
    promtool accepts and the query API does not care about). Returns the sample count."""
    rng = np.random.default_rng(seed)
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}

    def add(name: str, labels: dict[str, str], ts: float, value: float) -> None:
        series.setdefault((name, _labels(labels)), []).append((ts, value))

    start = T0 - timedelta(minutes=5)
    vllm_times = [start + timedelta(seconds=30 * k) for k in range(131)]
    for pool in POOLS:
        lab = {"model_name": "llama-3-8b", "pool": pool}
        done = pre = 0.0
        cum = {h: np.zeros(len(LE)) for h in HISTOGRAMS}
        sums = dict.fromkeys(HISTOGRAMS, 0.0)
        for t in vllm_times:
            ts = t.timestamp()
            treated = pool == "pool-a" and t >= T0 + HOUR / 2
            burst = 3.0 if t.minute % 20 < 2 else 1.0
            n = int(rng.poisson(60 * burst))
            done += n
            pre += int(rng.poisson(0.5 * burst))
            add("vllm:num_requests_waiting", lab, ts,
                float(rng.poisson(6 * burst * (0.5 if treated else 1.0))))
            add("vllm:num_requests_running", lab, ts, float(rng.integers(8, 32)))
            add("vllm:request_success_total", {**lab, "finished_reason": "stop"}, ts, done)
            add("vllm:num_preemptions_total", lab, ts, pre)
            for h, scale in HISTOGRAMS.items():
                x = rng.lognormal(math.log(scale * burst * (0.7 if treated else 1.0)), 0.6, n)
                cum[h] += np.array([(x <= le).sum() for le in LE])
                sums[h] += float(x.sum())
                for le, c in zip(LE, cum[h], strict=True):
                    add(f"{h}_bucket", {**lab, "le": "+Inf" if math.isinf(le) else str(le)},
                        ts, float(c))
                add(f"{h}_sum", lab, ts, sums[h])
                add(f"{h}_count", lab, ts, float(cum[h][-1]))
    dcgm_times = [start + timedelta(seconds=15 * k) for k in range(261)]
    for p, pool in enumerate(POOLS):
        for g in range(2):
            lab = {"gpu": str(g), "UUID": f"GPU-{p:04d}-{g:04d}", "Hostname": f"gpu-node-{p}",
                   "modelName": "NVIDIA H100 80GB HBM3", "pool": pool}
            energy = 0.0
            for t in dcgm_times:
                ts = t.timestamp()
                idle = (t.minute // 10) % 3 == 2 and g == 1
                util = 3.0 if idle else float(np.clip(rng.normal(78, 12), 0, 100))
                power = 90.0 if idle else 250 + 4 * util
                energy += power * 15 * 1000
                add("DCGM_FI_DEV_GPU_UTIL", lab, ts, round(util))
                add("DCGM_FI_DEV_POWER_USAGE", lab, ts, power)
                add("DCGM_FI_DEV_FB_USED", lab, ts, 20000 + 500 * util)
                add("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", lab, ts, energy)
    for k, t in enumerate(vllm_times):
        add("stabilis_test_a", {"pool": "pool-a"}, t.timestamp(), float(k))
        if t >= T0 + HOUR / 2:
            add("stabilis_test_b", {"pool": "pool-a"}, t.timestamp(), float(k))
    lines = [f"{name}{labels} {v:.6g} {ts:.3f}" for (name, labels), points in series.items()
             for ts, v in points]
    path.write_text("\n".join(lines) + "\n# EOF\n")
    return len(lines)


def backfill(openmetrics_file: Path, tsdb: Path) -> None:
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics",
                    str(openmetrics_file), str(tsdb)], check=True, capture_output=True,
                   timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bcrypt_hash(password: str) -> str | None:
    """A bcrypt hash (cost 4: a test) with the C library's crypt (Python 3.11 `crypt`, via
    libxcrypt), or None where it has no bcrypt."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # noqa: PLC0415 (deprecated; fine for a test helper on 3.11)
        out = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    except (ImportError, AttributeError, OSError, ValueError):
        return None
    return out if out and out.startswith("$2") else None


@dataclass
class PromServer:
    """One `prometheus` process over `tsdb`; basic auth when `users` (name -> password)."""

    tsdb: Path
    work: Path
    users: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        config = self.work / "prometheus.yml"
        config.write_text("global: {}\n")  # no scrape: the TSDB holds the backfilled blocks
        args = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.tsdb}",
                "--storage.tsdb.retention.time=100y", "--log.level=warn"]
        if self.users:
            hashed = {u: bcrypt_hash(p) for u, p in self.users.items()}
            web = self.work / "web.yml"
            web.write_text("basic_auth_users:\n" + "".join(
                f"  {u}: '{h}'\n" for u, h in hashed.items()))
            args.append(f"--web.config.file={web}")
        self.port = free_port()
        args.append(f"--web.listen-address=127.0.0.1:{self.port}")
        log = (self.work / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.proc.returncode}: "
                                   f"{(self.work / 'prometheus.log').read_text()[-2000:]}")
            if self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not ready on {self.url} within {timeout_s} s")

    def auth_header(self) -> dict[str, str]:
        if not self.users:
            return {}
        user, password = next(iter(self.users.items()))
        return {"Authorization": "Basic " + base64.b64encode(
            f"{user}:{password}".encode()).decode()}

    def ready(self) -> bool:
        req = urllib.request.Request(f"{self.url}/-/ready", headers=self.auth_header())
        try:
            with urllib.request.urlopen(req, timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def start_server(work: Path, users: dict[str, str] | None = None) -> PromServer:
    """Generate the series, backfill them and start a server (the caller stops it)."""
    om = work / "series.om"
    openmetrics(om)
    tsdb = work / "tsdb"
    backfill(om, tsdb)
    server = PromServer(tsdb, work / "server", dict(users or {}))
    server.start()
    return server

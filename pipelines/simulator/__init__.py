"""Discrete-event simulator of a GPU inference cluster (Dagster-free).

Entry points: `simulate(cfg)` -> canonical tables; `run_engine(cfg)` -> engine outcomes only;
`demo_config` / `mmc_config` build configurations; `Policy` names the scheduling policies.
"""

from pipelines.simulator.policies import Policy, policy_set
from pipelines.simulator.runner import EngineRun, SimResult, run_engine, simulate
from pipelines.simulator.scenarios import demo_config, mmc_config

__all__ = [
    "EngineRun",
    "Policy",
    "SimResult",
    "demo_config",
    "mmc_config",
    "policy_set",
    "run_engine",
    "simulate",
]

"""Model-based what-if: replay a pilot's workload under each policy and measure the replay
with the metric SQL (Dagster-free; the asset is assets/whatif.py).

- `run`: replays, measurement through the headline SQL, the what-if tables and `store`;
- `replay`: a phase's observed requests (or a trace file) as simulator input;
- `declared`: an `arrivals` trace with the service model pilot.yaml declares in `whatif:`;
- `status`: what can be modeled for a pilot, and the `whatif_status` row saying so;
- `cli`: `stabilis whatif`.
"""

from pipelines.whatif.run import (
    DECLARED,
    DEFAULT_MINUTES,
    DEFAULT_POLICIES,
    DEFAULT_SEEDS,
    ERROR_COLUMNS,
    ERROR_METRICS,
    HEADLINE,
    RESULTS_COLUMNS,
    TODAY,
    WARMUP_MINUTES,
    ReplayTables,
    WhatIfRun,
    derived_key,
    headline_models,
    headline_table,
    last_phase,
    measure,
    not_modeled_run,
    policy_map,
    run_whatif,
    simulate_replay,
    store,
)
from pipelines.whatif.status import WhatIfStatus, prepare

__all__ = [
    "DECLARED", "DEFAULT_MINUTES", "DEFAULT_POLICIES", "DEFAULT_SEEDS", "ERROR_COLUMNS",
    "ERROR_METRICS", "HEADLINE", "RESULTS_COLUMNS", "TODAY", "WARMUP_MINUTES", "ReplayTables",
    "WhatIfRun", "WhatIfStatus", "last_phase",
    "derived_key", "headline_models", "headline_table", "measure", "not_modeled_run",
    "policy_map", "prepare", "run_whatif", "simulate_replay", "store",
]

"""Jobs: everything for one pilot partition, ingest to report; and the tags every run carries.

Every run names its pilot and what started it, so the Runs page can be filtered by either:
`stabilis/pilot` = the partition, `stabilis/trigger` = one of the TRIGGER_* values (the
landing sensor adds the reason: `landing:new`, `landing:changed`).
"""

import dagster as dg

PILOT_TAG = "stabilis/pilot"
TRIGGER_TAG = "stabilis/trigger"
TRIGGER_CLI = "cli"  # stabilis run / report / backfill / demo (pipelines/runner.py)
TRIGGER_LANDING = "landing"  # the landing sensor, as landing:<reason>
TRIGGER_NIGHTLY = "nightly"
TRIGGER_WEEKLY_DQ = "weekly-dq"


def run_tags(pilot: str, trigger: str) -> dict[str, str]:
    """The tags of a run of `pilot` started by `trigger`."""
    return {PILOT_TAG: pilot, TRIGGER_TAG: trigger}


pilot_report_job = dg.define_asset_job(
    name="pilot_report",
    selection=dg.AssetSelection.all(),
    description="Ingest a pilot's telemetry, compute every table and render its report.",
)

# Dagster's own tags on materialization events (not exported by the dagster package)
DATA_VERSION_TAG = "dagster/data_version"
CODE_VERSION_TAG = "dagster/code_version"

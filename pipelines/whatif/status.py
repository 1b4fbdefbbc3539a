"""Can the what-if be modeled for a pilot, and from what (Dagster-free)?

In order: the phase's per-request rows (observed arrivals and service times, replayed and
compared with the measured slice); else the pilot's `arrivals` trace with the service model
pilot.yaml declares in `whatif:`; else `not_modeled`, with a reason naming what is needed.
Missing telemetry is a state (`whatif_status`), never an error; a pilot without the phase
(pilot.yaml always declares it) is invalid and raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from pipelines.config import WhatIfModel
from pipelines.whatif.declared import load_declared_replay
from pipelines.whatif.replay import (
    WARMUP_MINUTES,
    NoReplayInput,
    ReplayInput,
    load_replay,
    phase_bounds,
)

MODELED, NOT_MODELED = "modeled", "not_modeled"
NEEDS_INPUT = ("not modeled: needs per-request rows, or arrivals plus a `whatif:` service "
               "model in pilot.yaml")
NEEDS_MODEL = ("not modeled: needs a service model: the pilot has arrivals but no per-request "
               "rows; declare a `whatif:` block in pilot.yaml (service distribution, mean_s, "
               "cv, and gpus)")
STATUS_COLUMNS = {
    "pilot": pl.String, "status": pl.String, "basis": pl.String, "reason": pl.String,
    "window_start": pl.Datetime("us"), "window_end": pl.Datetime("us"),
    "service_model": pl.String,
}


@dataclass(frozen=True)
class WhatIfStatus:
    """One whatif_status row."""

    pilot: str
    status: str
    basis: str | None = None
    reason: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    service_model: str | None = None

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame([{c: getattr(self, c) for c in STATUS_COLUMNS}],
                            schema=STATUS_COLUMNS)


def modeled(rep: ReplayInput) -> WhatIfStatus:
    return WhatIfStatus(rep.pilot, MODELED, rep.basis, None, rep.phase_start, rep.end,
                        rep.service_model)


def declared_model(con: duckdb.DuckDBPyConnection, pilot: str) -> WhatIfModel | None:
    """The validated `whatif:` block stored with the pilot (pilots.config_json), if any."""
    row = con.execute("SELECT config_json FROM pilots WHERE pilot = ?", [pilot]).fetchone()
    block = json.loads(row[0]).get("whatif") if row else None
    if not block:
        return None
    try:
        return WhatIfModel.from_dict(block)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"pilot {pilot!r}: stored whatif block is malformed ({e!r}); "
                         "re-ingest the pilot") from None


def prepare(con: duckdb.DuckDBPyConnection, pilot: str, phase: str = "baseline",
            minutes: float | None = None, warmup_minutes: float = WARMUP_MINUTES
            ) -> tuple[ReplayInput | None, WhatIfStatus]:
    """The replay input and the status it gives, or (None, a not_modeled status). A slice
    (`minutes`) of per-request rows is replayed after `warmup_minutes` of the arrivals before
    it; a whole phase starts as the pilot did."""
    start, end = phase_bounds(con, pilot, phase)
    n_req, n_arr = con.execute(
        """
        SELECT (SELECT count(*) FROM requests WHERE pilot = $p AND attempt = 0
                  AND arrival_ts >= $s AND arrival_ts < $e),
               (SELECT count(*) FROM arrivals WHERE pilot = $p AND ts >= $s AND ts < $e)
        """, {"p": pilot, "s": start, "e": end}).fetchone()
    model = declared_model(con, pilot)
    reason = NEEDS_INPUT
    if n_req:
        try:
            rep = load_replay(con, pilot, phase, minutes,
                              warmup_minutes=warmup_minutes if minutes else 0.0)
            return rep, modeled(rep)
        except NoReplayInput as e:
            reason = (f"not modeled: the per-request rows of the {phase} phase cannot be "
                      f"replayed ({e}); needs completed attempts with start and end times, "
                      "or arrivals plus a `whatif:` service model in pilot.yaml")
    if n_arr and model is not None:
        try:
            rep = load_declared_replay(con, pilot, model, phase, minutes)
            return rep, modeled(rep)
        except NoReplayInput as e:
            reason = f"not modeled: {e}"
    elif n_arr and not n_req:
        reason = NEEDS_MODEL
    elif model is not None and not n_req:
        reason = (f"not modeled: needs arrivals in the {phase} phase (a trace) or per-request "
                  "rows; the `whatif:` service model has nothing to replay")
    return None, WhatIfStatus(pilot, NOT_MODELED, None, reason)

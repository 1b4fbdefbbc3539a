"""Section 0's verdict: did the adjustments work, by how much, how sure, and what limits the claim.

Read from metrics_ci (changes, DiD and their 95 % intervals), metrics_before_after and the
phases; wording follows one rule: a metric "improved" only where the interval the report
prints excludes zero at the printed precision (sections.common.is_significant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pipelines.metric_catalog import BY_NAME, HEADLINE, Metric
from reports import fmt, visuals
from reports.conclusion import cap_clause
from reports.coverage import Coverage
from reports.sections.common import direction, is_significant, printed_interval

# The metrics an inference platform is judged on, in the order the verdict quotes them.
KEY_METRICS = ("p95_latency_s", "queue_wait_p95_s", "sla_adherence", "goodput_rps")
SEGMENT_WORDS = {"treatment": "Treatment segment", "control": "Control segment",
                 "all": "All traffic"}


@dataclass
class SegmentVerdict:
    segment: str
    title: str
    answer: str
    details: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    answer: str  # the one-line answer to "did it work?"
    segments: list[SegmentVerdict]
    sureness: str
    limits: list[str]
    chart_svg: str = ""
    chart_caption: str = ""
    counts: dict[str, int] = field(default_factory=dict)


def _amount(r: dict[str, Any], m: Metric) -> str:
    """The change as the tables print it: pp for shares, relative otherwise, with interval."""
    if m.unit in ("share", "pp"):
        return f"{fmt.change(r.get('change'), m.unit)} {printed_interval(r, m)}".strip()
    return f"{fmt.rel(r.get('rel_change'))} {printed_interval(r, m)}".strip()


def _levels(r: dict[str, Any], m: Metric) -> str:
    return f"{fmt.value(r.get('baseline'), m.unit)} → {fmt.value(r.get('validation'), m.unit)}"


def _metric_phrase(r: dict[str, Any], m: Metric, key: str = "significant") -> str:
    sig = is_significant(r, m, key)
    word = direction(r, m) if sig else "no significant change"
    return f"{m.label} {_levels(r, m)} ({_amount(r, m)}: {word})"


def _classify(ci: dict, seg: str, key: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"improved": [], "worsened": [], "flat": [], "untested": []}
    for m in HEADLINE:
        r = ci.get((seg, m.name))
        sig = is_significant(r, m, key)
        if sig is None:
            out["untested"].append(m.label)
        elif not sig:
            out["flat"].append(m.label)
        else:
            d = direction(r, m, "did" if key == "did_significant" else "change")
            out["improved" if d == "improved" else "worsened" if d == "worsened"
                else "flat"].append(m.label)
    return out


def _n_metrics(n: int) -> str:
    return f"{n} headline metric" + ("" if n == 1 else "s")


def _names(labels: list[str]) -> str:
    return ", ".join(labels) if labels else "none"


def _treatment(ci: dict, scope: str) -> tuple[SegmentVerdict, dict[str, list[str]], str]:
    within = _classify(ci, "treatment", "significant")
    beyond = _classify(ci, "treatment", "did_significant")
    tested = len(HEADLINE) - len(beyond["untested"])
    details = []
    for name in KEY_METRICS:
        m, r = BY_NAME[name], ci.get(("treatment", name))
        if r is None or r.get("change") is None:
            continue
        text = _metric_phrase(r, m)
        if r.get("did") is not None:
            sig = is_significant(r, m, "did_significant")
            how = (f"{direction(r, m, 'did')} beyond the control" if sig
                   else "not separable from the control's own change")
            text += (f"; against the control, difference-in-differences "
                     f"{fmt.change(r['did'], m.unit)} "
                     f"{printed_interval(r, m, 'did_significant')} — {how}")
        details.append(text + ".")
    if beyond["improved"] and not beyond["worsened"]:
        answer = (f"Partly: {len(beyond['improved'])} of {tested} headline metrics improved "
                  f"in the treatment segment beyond the control ({_names(beyond['improved'])})"
                  f"; none worsened beyond it" if len(beyond["improved"]) < tested else
                  f"Yes: all {tested} headline metrics improved beyond the control")
    elif beyond["improved"]:
        answer = (f"Mixed: beyond the control {len(beyond['improved'])} headline metrics "
                  f"improved ({_names(beyond['improved'])}) and {len(beyond['worsened'])} "
                  f"worsened ({_names(beyond['worsened'])})")
    elif beyond["worsened"]:
        answer = (f"No: {_n_metrics(len(beyond['worsened']))} worsened beyond the control "
                  f"({_names(beyond['worsened'])}) and none improved")
    else:
        answer = ("Not shown: no headline metric changed beyond the control's own change "
                  "(every difference-in-differences interval includes zero)")
    key_only_within = [BY_NAME[n].label for n in KEY_METRICS
                       if BY_NAME[n].label in within["improved"]
                       and BY_NAME[n].label not in beyond["improved"]]
    if key_only_within:
        answer += (f". {_names(key_only_within)} improved within the treatment segment, but "
                   "not beyond the control (difference-in-differences interval includes zero)")
    seg_answer = (f"Within the segment (baseline → validation), "
                  f"{_n_metrics(len(within['improved']))} improved "
                  f"({_names(within['improved'])}) and "
                  f"{len(within['worsened'])} worsened"
                  + (f" ({_names(within['worsened'])})" if within["worsened"] else "") + ".")
    return SegmentVerdict("treatment", f"{SEGMENT_WORDS['treatment']} ({scope})", seg_answer,
                          details), beyond, answer


def _control(ci: dict) -> tuple[SegmentVerdict, list[str]]:
    moved = _classify(ci, "control", "significant")
    changed = moved["improved"] + moved["worsened"]
    details = [_metric_phrase(r, BY_NAME[n]) + "." for n in KEY_METRICS
               if (r := ci.get(("control", n))) is not None and r.get("change") is not None]
    answer = (f"No adjustment was applied here. {_n_metrics(len(changed))} changed "
              f"significantly on their own ({_names(changed)})" if changed else
              "No adjustment was applied here, and no headline metric changed significantly "
              "on its own")
    return SegmentVerdict("control", f"{SEGMENT_WORDS['control']} (everything else)",
                          answer + ".", details), changed


def _all_only(ci: dict) -> SegmentVerdict:
    c = _classify(ci, "all", "significant")
    details = [_metric_phrase(r, BY_NAME[n]) + "." for n in KEY_METRICS
               if (r := ci.get(("all", n))) is not None and r.get("change") is not None]
    answer = (f"{_n_metrics(len(c['improved']))} improved ({_names(c['improved'])}) and "
              f"{len(c['worsened'])} worsened ({_names(c['worsened'])}) between the phases; "
              "without a control segment the change is not separated from other causes "
              "(load, release, time of day).")
    return SegmentVerdict("all", "All traffic (no control segment)", answer, details)


def _blocks(ci: dict) -> tuple[Any, Any, Any]:
    r = next(iter(ci.values()))
    return r.get("block_s"), r.get("blocks_baseline"), r.get("blocks_validation")


def build_verdict(ci: dict, control: bool, scope: str, phase_lengths: dict[str, timedelta],
                  hx: dict, cov: Coverage) -> Verdict:
    """The verdict of section 0, and a compact before/after chart of the key metrics."""
    if not ci:
        return Verdict("Cannot be judged: no confidence intervals were computed for this pilot "
                       "(metrics_ci), so no change is called an improvement.", [],
                       "Not assessed: no intervals.", _limits({}, False, [], phase_lengths, hx,
                                                              cov))
    segments: list[SegmentVerdict] = []
    confounded: list[str] = []
    counts: dict[str, int] = {}
    if control:
        tv, beyond, top = _treatment(ci, scope)
        cv, confounded = _control(ci)
        segments = [tv, cv]
        counts = {k: len(v) for k, v in beyond.items()}
        answer = f"Did the adjustments work? {top}."
        # a DiD driven by the control's own significant move is not the adjustments' doing
        driven = [m for m in beyond["improved"] + beyond["worsened"] if m in confounded]
        if driven:
            answer += (f" Caution: the control segment itself changed significantly in "
                       f"{_names(driven)}, so that difference may come from the control rather "
                       "than from the adjustments.")
    else:
        segments = [_all_only(ci)]
        answer = "Did the adjustments work? Not attributable: " + segments[0].answer
    block_s, nb, nv = _blocks(ci)
    sureness = ("How sure: 95 % block-bootstrap intervals"
                + (f" ({nb} baseline and {nv} validation blocks of "
                   f"{fmt.long_duration(block_s)})"
                   if nb and nv and block_s else "")
                + "; a metric is called improved or worsened only where its printed interval "
                  "excludes zero" + ("; the verdict uses the difference-in-differences, which "
                                     "removes what also moved in the control segment"
                                     if control else "") + ".")
    svg = visuals.before_after_chart(_chart_rows(ci, control))
    return Verdict(answer, segments, sureness,
                   _limits(ci, control, confounded, phase_lengths, hx, cov), svg,
                   "Before / after, key metrics: points are phase values per segment, bars "
                   "their 95 % intervals; above each panel the "
                   + ("treatment's difference-in-differences against the control"
                      if control else "change") + ", bold where its interval excludes zero "
                   "(measured, metrics_ci)." if svg else "",
                   counts)


def _chart_rows(ci: dict, control: bool) -> list[dict[str, Any]]:
    """Input of visuals.before_after_chart: the key metrics per segment, in display units,
    the DiD (or, without a control, the change) written once per metric."""
    segs = ("treatment", "control") if control else ("all",)
    key = "did_significant" if control else "significant"
    rows: list[dict[str, Any]] = []
    for name in KEY_METRICS:
        m = BY_NAME[name]
        f, u = visuals.SCALE.get(m.unit, (1.0, m.unit))
        for s in segs:
            r = ci.get((s, name))
            if r is None:
                continue
            row: dict[str, Any] = {"metric": f"{m.label} [{u}]", "segment": s}
            for ph in ("baseline", "validation"):
                for suffix in ("", "_lo", "_hi"):
                    v = r.get(ph + suffix)
                    row[ph + suffix] = None if v is None else v * f
            if s == segs[0] and r.get(key) is not None:
                word = "DiD" if control else "Δ"
                amount = (fmt.change(r.get("did"), m.unit) if control
                          else _amount(r, m).split(" [")[0])
                row["did_text"] = f"{word} {amount} {printed_interval(r, m, key)}".strip()
                row["did_significant"] = bool(is_significant(r, m, key))
            rows.append(row)
    return rows


def _limits(ci: dict, control: bool, confounded: list[str],
            phase_lengths: dict[str, timedelta], hx: dict, cov: Coverage) -> list[str]:
    out = []
    b, v = phase_lengths.get("baseline"), phase_lengths.get("validation")
    if v is not None:
        out.append(f"Validation length: {fmt.duration(v)}"
                   + (f" against a {fmt.duration(b)} baseline" if b is not None else "")
                   + "; a longer validation phase narrows the intervals.")
    if not control:
        out.append("No control segment: a change between the phases may come from load, "
                   "releases or time of day, not from the adjustments.")
    elif confounded:
        out.append(f"Confounding: the control segment, which had no adjustment, also moved "
                   f"significantly in {_n_metrics(len(confounded))} "
                   f"({_names(confounded)}); only the difference-in-differences is attributed "
                   "to the adjustments.")
    else:
        wide = [BY_NAME[n].label for n in KEY_METRICS if (r := ci.get(("control", n)))
                and r.get("rel_change") is not None and abs(r["rel_change"]) >= 0.2]
        if wide:
            out.append(f"The control segment moved by 20 % or more without reaching "
                       f"significance in {_names(wide)}: its wide intervals widen every "
                       "difference-in-differences interval.")
    cap = cap_clause(hx)
    if cap:
        out.append(f"Queue figures: {cap}.")
    if cov.known:
        missing = cov.missing()
        if missing:
            out.append(f"Missing telemetry: {len(missing)} of {len(cov.items)} report items "
                       f"are not measured ({', '.join(i.label for i in missing[:5])}"
                       f"{', …' if len(missing) > 5 else ''}; section 11).")
    else:
        out.append("Missing telemetry: unknown (no measurement_coverage table in this run).")
    return out

"""Sections 9–11: interpretation, conclusion and next steps."""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.metric_catalog import BY_NAME, HEADLINE
from reports import fmt
from reports.coverage import Coverage, Item
from reports.sections.common import (
    PATTERNS,
    change_words,
    direction,
    is_significant,
    not_in_run,
    pattern_label,
)
from reports.sections.operational_patterns import PatternSummary
from reports.types import Part, Table


def interpretation(summaries: Sequence[PatternSummary], ci: dict, control: bool,
                   cov: Coverage, verdict_kind: str = "") -> list[Part]:
    """One bullet per headline metric the detected patterns act on (not one per pattern: two
    patterns on the same metric would repeat its sentence), each change with its scope."""
    if not ci:
        return [not_in_run("no confidence intervals (metrics_ci), so no change is interpreted")]
    seg = "treatment" if control else "all"
    scope = "treatment segment" if control else "all traffic"
    by_metric: dict[str, list[PatternSummary]] = {}
    for s in summaries:
        name = PATTERNS.get(s.pattern, ("", ""))[1]
        if name in BY_NAME:
            by_metric.setdefault(name, []).append(s)
    bullets = []
    for name, pats in by_metric.items():
        m = BY_NAME[name]
        found = "; ".join(f"{p.label.lower()} {p.by_phase.get('baseline', 0)} → "
                          f"{p.by_phase.get('validation', 0)}" for p in pats)
        head = (f"{m.label} — patterns acting on it, findings baseline → validation (all "
                f"traffic, findings table): {found}.")
        r = ci.get((seg, m.name))
        if r is None or r.get("change") is None:
            bullets.append(head + f" {m.label} is not measured in the {scope}, so the "
                                  f"effect on it cannot be judged.")
            continue
        text = f"{head} In the {scope}, {m.label} {change_words(r, m, 'change')}."
        if control:
            sig = is_significant(r, m, "did_significant")
            span = fmt.change_interval(r.get("did_lo"), r.get("did_hi"), m.unit)
            if sig:
                text += (f" Against the control segment the difference-in-differences is "
                         f"{fmt.change(r['did'], m.unit)} {span}: the treatment "
                         f"{direction(r, m, 'did')} beyond the control's change.")
            elif sig is False:
                text += (f" Against the control segment the difference-in-differences "
                         f"{span} includes zero, so the change is not attributed to the "
                         f"adjustments.")
        bullets.append(text)
    if not bullets:
        tested = [i for k, i in cov.items.items() if k.startswith("pattern:")
                  and i.status != "not_measured"]
        if cov.known and not tested:
            return [Part("", ["No pattern could be tested on this pilot's telemetry (section "
                              "3 lists what each needs), so there is nothing to interpret "
                              "beyond the validated results of section 8."])]
        return [Part("", ["No pattern was found among those tested, so there is nothing to "
                          "interpret beyond the validated results of section 8."])]
    lead = {"queue": "The baseline was queue-dominated (section 0.4), so the queue-wait and "
                     "latency rows below are where the adjustments had to show.",
            "gpu": "The baseline was GPU-limited (section 0.4): scheduling changes can move "
                   "waiting between classes but not add capacity.",
            "balanced": "The baseline showed no dominant limit (section 0.4)."}.get(
        verdict_kind, "")
    return [Part("", [t for t in (lead, "Each headline metric a detected pattern acts on, "
                                  "read with its 95 % block-bootstrap interval (metrics_ci).")
                      if t], bullets=bullets)]


def conclusion(baseline_sentence: str, ci: dict, control: bool) -> list[Part]:
    texts = [baseline_sentence]
    if ci:
        key = "did_significant" if control else "significant"
        seg = "treatment" if control else "all"
        better, worse, flat, none = [], [], [], []
        for m in HEADLINE:
            r = ci.get((seg, m.name))
            sig = is_significant(r, m, key)
            if sig is None:
                none.append(m.label)
            elif not sig:
                flat.append(m.label)
            else:
                d = direction(r, m, "did" if control else "change")
                (better if d == "improved" else worse if d == "worsened" else flat).append(
                    m.label)
        ref = ("beyond the control segment's change (difference-in-differences interval "
               "excludes zero)" if control else "(95 % interval of the change excludes zero; "
               "no control segment, so the change is not separated from other causes)")
        texts.append(f"Of {len(HEADLINE)} headline metrics, {len(better)} improved {ref}"
                     + (f": {', '.join(better)}" if better else "") + f"; {len(worse)} worsened"
                     + (f" ({', '.join(worse)})" if worse else "")
                     + f"; {len(flat)} showed no significant change"
                     + (f" ({', '.join(flat)})" if flat else "")
                     + (f"; {len(none)} could not be tested ({', '.join(none)})" if none else "")
                     + " (measured, metrics_ci).")
    else:
        texts.append("Whether the validation changed the headline metrics cannot be concluded: "
                     "no confidence intervals were computed for this pilot.")
    return [Part("", texts)]


def next_steps(summaries: Sequence[PatternSummary], ci: dict, control: bool,
               sync_missing: list[str], cov: Coverage) -> list[Part]:
    steps = []
    still = sorted((s for s in summaries if s.by_phase.get("validation", 0)),
                   key=lambda s: -s.by_phase["validation"])
    if still:
        steps.append("Still detected in the validation phase (findings, all traffic; section 3): "
                     + "; ".join(f"{s.label.lower()} {s.by_phase['validation']} findings"
                                 + (f" in {_where(s.pools)}" if s.pools else "")
                                 for s in still)
                     + f". Examine the evidence of {still[0].label.lower()} first before "
                       "extending the adjustments.")
    for layer in sync_missing:
        steps.append(f"The {layer} layer of the synchronization map is not measured; add "
                     f"telemetry for it to judge that layer.")
    if control and ci:
        both = [BY_NAME[m].label for (seg, m), r in ci.items() if seg == "control"
                and m in BY_NAME and BY_NAME[m].headline and is_significant(r, BY_NAME[m])]
        if both:
            more = ", …" if len(both) > 5 else ""
            steps.append(f"The control segment also changed significantly in {len(both)} "
                         f"metrics ({', '.join(both[:5])}{more}): look for a cause common to "
                         "both segments (load, release, time of day) before attributing those "
                         "changes.")
    parts = [missing_telemetry(cov)]
    if steps:
        parts.append(Part("Open questions", ["Derived from what the data left open:"],
                          bullets=steps))
    elif cov.known and not cov.missing():
        parts.append(Part("Open questions", [
            "No open pattern or confounded change was found in the tables of this run."]))
    return parts


def _where(scopes: Sequence[str], most: int = 4) -> str:
    """Findings scopes in words: pools by name, 'segment:x' as the x segment (not a pool)."""
    words = [f"the {p.removeprefix('segment:')} segment" if p.startswith("segment:") else p
             for p in scopes]
    return ", ".join(words[:most]) + (", …" if len(words) > most else "")


def missing_telemetry(cov: Coverage) -> Part:
    """Each missing telemetry (measurement_coverage, not measured), the report items it
    would unlock, and what else it would make possible."""
    head = "Missing telemetry and what it would unlock"
    if not cov.known:
        return Part(head, ["Which telemetry is missing cannot be listed: the warehouse has no "
                           "measurement_coverage table for this run (coverage unknown). Rerun "
                           "the pipeline to build it."])
    missing = cov.missing()
    if not missing:
        return Part(head, ["Every item of the report could be measured from this pilot's "
                           "telemetry (measurement_coverage): no telemetry is missing."])
    by_need: dict[str, list[Item]] = {}
    for i in missing:
        by_need.setdefault(i.needs or "telemetry not named by the pipeline", []).append(i)
    rows = []
    for need, items in sorted(by_need.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        unlocks = sorted({i.unlocks for i in items if i.unlocks})
        rows.append([need, ", ".join(_item_label(i) for i in items),
                     "; ".join(unlocks) if unlocks else "—"])
    return Part(head, [
        f"{len(missing)} of {len(cov.items)} report items are not measured on this pilot's "
        f"telemetry. Each line below is one piece of telemetry to collect, the items it would "
        f"let the report measure, and what else it would make possible (measurement_coverage)."],
        tables=[Table("Missing telemetry (measurement_coverage, status not measured)",
                      ["Telemetry to collect", "Would measure", "Would also unlock"], rows,
                      basis=None, wrap_cols=(0, 1, 2))])


def _item_label(i: Item) -> str:
    if i.item.startswith("pattern:"):
        return f"pattern “{pattern_label(i.item.removeprefix('pattern:'))}”"
    return i.label

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
    not_in_run,
    pattern_label,
)
from reports.sections.operational_patterns import PatternSummary
from reports.types import Part, Table


def interpretation(summaries: Sequence[PatternSummary], ci: dict, control: bool,
                   cov: Coverage) -> list[Part]:
    if not ci:
        return [not_in_run("no confidence intervals (metrics_ci), so no change is interpreted")]
    seg = "treatment" if control else "all"
    bullets = []
    for s in summaries:
        m = BY_NAME.get(PATTERNS.get(s.pattern, ("", ""))[1])
        if m is None:
            continue
        r = ci.get((seg, m.name))
        base_n = s.by_phase.get("baseline", 0)
        val_n = s.by_phase.get("validation", 0)
        head = (f"{s.label}: {base_n} findings in the baseline, {val_n} in the validation "
                f"phase (findings table).")
        if r is None or r.get("change") is None:
            bullets.append(head + f" {m.label} is not measured, so its effect cannot be "
                                  f"judged.")
            continue
        words = change_words(r, m, "change")
        tail = ""
        if control:
            did_sig = r.get("did_significant")
            if did_sig:
                tail = (f" Against the control segment the difference-in-differences is "
                        f"{fmt.change(r['did'], m.unit)} "
                        f"{fmt.change_interval(r['did_lo'], r['did_hi'], m.unit)}: the "
                        f"treatment {direction(r, m, 'did')} beyond the control's change.")
            elif did_sig is False:
                tail = (f" The difference-in-differences "
                        f"{fmt.change_interval(r['did_lo'], r['did_hi'], m.unit)} spans "
                        f"zero: no significant change relative to the control, so the "
                        f"change cannot be attributed to the adjustments.")
        bullets.append(f"{head} In the {'treatment segment' if control else 'pilot'} "
                       f"{m.label} {words}.{tail}")
    if not bullets:
        tested = [i for k, i in cov.items.items() if k.startswith("pattern:")
                  and i.status != "not_measured"]
        if cov.known and not tested:
            return [Part("", ["No pattern could be tested on this pilot's telemetry (section "
                              "3 lists what each needs), so there is nothing to interpret "
                              "beyond the validated results of section 8."])]
        return [Part("", ["No pattern was found among those tested, so there is nothing to "
                          "interpret beyond the validated results of section 8."])]
    return [Part("", ["Each detected pattern is read against the headline metric it acts on "
                      "(95 % block-bootstrap intervals, metrics_ci)."], bullets=bullets)]



def conclusion(baseline_sentence: str, ci: dict, control: bool) -> list[Part]:
    texts = [baseline_sentence]
    if ci:
        key = "did_significant" if control else "significant"
        seg = "treatment" if control else "all"
        better, worse, flat, none = [], [], [], []
        for m in HEADLINE:
            r = ci.get((seg, m.name))
            if r is None or r.get(key) is None:
                none.append(m.label)
            elif not r[key]:
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
    for s in summaries:
        n = s.by_phase.get("validation", 0)
        if n:
            steps.append(f"{s.label} is still detected in the validation phase ({n} findings, "
                         f"section 3): examine its evidence tables before extending the "
                         f"adjustments.")
    for layer in sync_missing:
        steps.append(f"The {layer} layer of the synchronization map is not measured; add "
                     f"telemetry for it to judge that layer.")
    if control and ci:
        both = [BY_NAME[m].label for (seg, m), r in ci.items() if seg == "control"
                and r.get("significant") and m in BY_NAME and BY_NAME[m].headline]
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

"""The generic report sections (3–6, 9–11, appendices C, D and data quality), one module each.

Every sentence is assembled from a table the pipeline built; where the table is absent or
empty, or the telemetry a detector needs is missing (measurement_coverage), the section says
so in one line. Nothing is computed beyond reading, grouping and counting rows for display.
"""

from reports.sections.common import (
    PATTERNS,
    Reader,
    change_text,
    change_words,
    ci_index,
    did_text,
    direction,
    is_significant,
    not_in_run,
    pattern_anchor,
    pattern_label,
)
from reports.sections.hidden_losses import losses
from reports.sections.model_adjustments import predicted_for, whatif
from reports.sections.observer import data_quality, identifier_check, observer_only
from reports.sections.operational_patterns import (
    DETECTOR_SCORES_TEXT,
    PatternSummary,
    detector_scores_table,
    patterns,
    top_findings,
    untested_patterns,
)
from reports.sections.outlook import conclusion, interpretation, next_steps
from reports.sections.topology_waves import disruptions, sla_risk, slot_locking, topology

__all__ = [
    "DETECTOR_SCORES_TEXT", "detector_scores_table",
    "PATTERNS", "PatternSummary", "Reader", "change_text", "change_words", "ci_index",
    "conclusion", "data_quality", "did_text", "direction", "disruptions", "identifier_check",
    "interpretation", "is_significant", "losses", "next_steps", "not_in_run", "observer_only",
    "pattern_anchor", "pattern_label", "patterns", "predicted_for", "sla_risk", "slot_locking",
    "top_findings", "topology", "untested_patterns", "whatif",
]

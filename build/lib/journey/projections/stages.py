"""The default clinic stage model as SQL over ``touchpoints`` columns.

awareness -> contact -> booking -> first_visit -> treatment -> retention -> advocacy
(../shared/DOMAIN.md). A declarative, editable stage model replaces this in the
funnels issue; until then this is the one place stages are decided.
"""

from __future__ import annotations

__all__ = ["STAGES", "stage_sql"]

STAGES = ("awareness", "contact", "booking", "first_visit", "treatment", "retention", "advocacy")

RECALL_DAYS = 180
"""A visit this long after the previous one is a recall visit (retention)."""


def stage_sql(t: str = "t") -> str:
    """A SQL expression giving a touch's stage. Needs ``prev_visit_at`` and
    ``visit_no`` (the visit's number in the customer's journey) on ``t``."""
    return f"""CASE
        WHEN {t}.type IN ('ad_click', 'referral') THEN 'awareness'
        WHEN {t}.type IN ('call', 'form') THEN 'contact'
        WHEN {t}.type = 'message' AND {t}.direction = 'inbound' THEN 'contact'
        WHEN {t}.type IN ('booking', 'booking_cancelled', 'no_show') THEN 'booking'
        WHEN {t}.type = 'message' AND {t}.purpose IN ('reminder', 'confirmation') THEN 'booking'
        WHEN {t}.type = 'visit' AND {t}.visit_no = 1 THEN 'first_visit'
        WHEN {t}.type = 'visit' AND {t}.occurred_at - {t}.prev_visit_at >= INTERVAL {RECALL_DAYS} DAY
            THEN 'retention'
        WHEN {t}.type IN ('visit', 'treatment_plan', 'payment') THEN 'treatment'
        WHEN {t}.type = 'message' AND {t}.purpose IN ('recall', 'care', 'thank_you', 'birthday',
            'promotion', 'newsletter') THEN 'retention'
        WHEN {t}.type = 'review' THEN 'advocacy'
        ELSE NULL
    END"""

"""Cohort analytics over the published projection with PostHog's semantics: retention
(``retention``) and lifecycle (``lifecycle``), on calendar periods (``periods``)."""

"""The KPI catalogue: definitions are data, derivations are named SQL files in ``sql/``.

Each measure is a proportion ``numerator / denominator`` for one contract and one
month (reoffending: one cohort quarter, labelled by its first month). ``direction``
says whether higher or lower is better. Default targets seed new contracts; the
targets actually in force live in the ``target`` table with their history.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MeasureDef:
    code: str
    service_type: str
    name: str
    definition: str
    numerator: str
    denominator: str
    direction: str  # "higher" or "lower" is better
    unit: str
    sql_name: str
    default_target: float
    default_tolerance: float
    min_volume: int = 20
    service_credit_pct: float = 0.0


MEASURES: tuple[MeasureDef, ...] = (
    MeasureDef(
        "crc_first_contact_5wd", "crc", "First appointment within 5 working days",
        "Orders and licences allocated in the month whose first face-to-face appointment took place within 5 working days of allocation.",
        "orders allocated in the month with a first appointment within 5 working days",
        "orders allocated in the month", "higher", "percent", "kpi_crc_first_contact", 0.90, 0.05, 20, 1.0,
    ),
    MeasureDef(
        "crc_plan_15wd", "crc", "Initial sentence plan within 15 working days",
        "Orders and licences allocated in the month with an initial sentence plan completed within 15 working days of allocation.",
        "orders allocated in the month with a sentence plan within 15 working days",
        "orders allocated in the month", "higher", "percent", "kpi_crc_sentence_plan", 0.85, 0.05, 20, 1.5,
    ),
    MeasureDef(
        "crc_orders_completed", "crc", "Orders completed successfully",
        "Community orders, suspended sentence orders and licences ending in the month that were completed, not revoked for breach or a further offence.",
        "orders ending in the month that were completed",
        "orders ending in the month", "higher", "percent", "kpi_crc_orders_completed", 0.70, 0.05, 20, 1.5,
    ),
    MeasureDef(
        "ttg_plan_5wd", "ttg", "Resettlement plan within 5 working days of reception",
        "People received into custody in the month whose resettlement plan was completed within 5 working days.",
        "receptions in the month with a resettlement plan within 5 working days",
        "receptions in the month", "higher", "percent", "kpi_ttg_plan", 0.90, 0.05, 20, 1.0,
    ),
    MeasureDef(
        "ttg_settled_accommodation", "ttg", "Settled accommodation on the first night",
        "People released in the month who were in settled accommodation on their first night out of custody.",
        "releases in the month to settled accommodation",
        "releases in the month", "higher", "percent", "kpi_ttg_accommodation", 0.85, 0.05, 20, 2.0,
    ),
    MeasureDef(
        "ttg_ete_on_release", "ttg", "In employment, education or training on release",
        "People released in the month who were in employment, education or training on release.",
        "releases in the month in employment, education or training",
        "releases in the month", "higher", "percent", "kpi_ttg_ete", 0.15, 0.03, 20, 0.5,
    ),
    MeasureDef(
        "em_tag_24h", "em", "Tag fitted within 24 hours",
        "Electronic monitoring orders starting in the month whose tag was fitted within 24 hours of the order start.",
        "orders starting in the month with the tag fitted within 24 hours",
        "orders starting in the month", "higher", "percent", "kpi_em_tag_fitted", 0.95, 0.03, 20, 1.0,
    ),
    MeasureDef(
        "em_violation_response", "em", "Violations notified within target time",
        "Violations on orders ending in the month that were notified to the responsible officer within the target time.",
        "violations notified within the target time",
        "violations on orders ending in the month", "higher", "percent", "kpi_em_violation_response", 0.90, 0.05, 20, 1.0,
    ),
    MeasureDef(
        "em_orders_completed", "em", "Orders completed without breach",
        "Electronic monitoring orders ending in the month that were completed without breach or revocation.",
        "orders ending in the month that were completed",
        "orders ending in the month", "higher", "percent", "kpi_em_orders_completed", 0.75, 0.05, 20, 1.0,
    ),
    MeasureDef(
        "hl_assessed_5wd", "health", "Assessed within 5 working days of referral",
        "Referrals received in the month whose assessment was completed within 5 working days.",
        "referrals in the month assessed within 5 working days",
        "referrals in the month", "higher", "percent", "kpi_health_assessed", 0.85, 0.05, 20, 1.0,
    ),
    MeasureDef(
        "hl_continuity_21d", "health", "Continuity of care within 21 days of release",
        "People referred on release from prison with a treatment need who started community treatment within 21 days (3 weeks) of release.",
        "prison releases referred in the month who started community treatment within 21 days",
        "prison releases with a treatment need referred in the month", "higher", "percent", "kpi_health_continuity", 0.50, 0.10, 10, 1.0,
    ),
    MeasureDef(
        "hl_treatment_21d", "health", "Substance-misuse treatment started within 21 days",
        "Substance-misuse referrals received in the month where treatment started within 21 days of referral.",
        "substance-misuse referrals in the month with treatment started within 21 days",
        "substance-misuse referrals in the month", "higher", "percent", "kpi_health_treatment", 0.60, 0.05, 20, 1.0,
    ),
    MeasureDef(
        "crc_licence_contact_1wd", "crc", "Licence first appointment within 1 working day of release",
        "Licences starting in the month whose first face-to-face appointment took place within 1 working day of release.",
        "licences starting in the month with a first appointment within 1 working day",
        "licences starting in the month", "higher", "percent", "kpi_crc_licence_contact", 0.90, 0.05, 10, 0.5,
    ),
    MeasureDef(
        "crc_upw_hours_delivered", "crc", "Unpaid work hours delivered on ending orders",
        "Of the unpaid work hours ordered on orders ending in the month, the share delivered.",
        "unpaid work hours delivered on orders ending in the month",
        "unpaid work hours ordered on orders ending in the month", "higher", "percent of hours", "kpi_crc_upw_delivered",
        0.70, 0.05, 200, 0.5,
    ),
    MeasureDef(
        "crc_licences_completed", "crc", "Licences completed successfully",
        "Licences ending in the month that were completed without recall or revocation.",
        "licences ending in the month that were completed",
        "licences ending in the month", "higher", "percent", "kpi_crc_licences_completed", 0.65, 0.05, 10, 0.5,
    ),
    MeasureDef(
        "ttg_homeless_on_release", "ttg", "Released homeless",
        "People released in the month who were homeless on their first night out of custody (lower is better).",
        "releases in the month to no accommodation (homeless)",
        "releases in the month", "lower", "percent", "kpi_ttg_homeless", 0.10, 0.03, 20, 1.0,
    ),
    MeasureDef(
        "ttg_plan_before_release", "ttg", "Resettlement plan in place before release",
        "People released in the month who had a resettlement plan completed before their release date.",
        "releases in the month with a resettlement plan dated before release",
        "releases in the month", "higher", "percent", "kpi_ttg_plan_before_release", 0.95, 0.03, 20, 0.5,
    ),
    MeasureDef(
        "ttg_accommodation_recorded", "ttg", "Accommodation status recorded",
        "People released in the month whose first-night accommodation was recorded (not 'unknown' or blank): a data-quality measure.",
        "releases in the month with accommodation recorded",
        "releases in the month", "higher", "percent", "kpi_ttg_accommodation_recorded", 0.95, 0.03, 20, 0.0,
    ),
    MeasureDef(
        "em_tag_48h", "em", "Tag fitted within 48 hours",
        "Electronic monitoring orders starting in the month whose tag was fitted within 48 hours (further attempts).",
        "orders starting in the month with the tag fitted within 48 hours",
        "orders starting in the month", "higher", "percent", "kpi_em_tag_48h", 0.99, 0.02, 20, 0.5,
    ),
    MeasureDef(
        "em_breach_rate", "em", "Orders ending in breach",
        "Electronic monitoring orders ending in the month that ended in breach or revocation (lower is better).",
        "orders ending in the month in breach or revoked",
        "orders ending in the month", "lower", "percent", "kpi_em_breach_rate", 0.25, 0.05, 20, 0.0,
    ),
    MeasureDef(
        "em_violation_free", "em", "Orders completed with no violations",
        "Electronic monitoring orders ending in the month with no violations notified during the order.",
        "orders ending in the month with no violations",
        "orders ending in the month", "higher", "percent", "kpi_em_violation_free", 0.15, 0.05, 20, 0.0,
    ),
    MeasureDef(
        "hl_assessed_any", "health", "Referrals assessed",
        "Referrals received in the month that were assessed at all.",
        "referrals in the month with an assessment",
        "referrals in the month", "higher", "percent", "kpi_health_assessed_any", 0.95, 0.03, 20, 0.5,
    ),
    MeasureDef(
        "hl_ld_assessed_2wd", "health", "Liaison and diversion assessed within 2 working days",
        "Liaison and diversion referrals received in the month assessed within 2 working days.",
        "liaison and diversion referrals assessed within 2 working days",
        "liaison and diversion referrals in the month", "higher", "percent", "kpi_health_ld_assessed", 0.50, 0.10, 20, 0.5,
    ),
    MeasureDef(
        "hl_treatment_started", "health", "Substance-misuse treatment started",
        "Substance-misuse referrals received in the month where community treatment started at all.",
        "substance-misuse referrals with a treatment start",
        "substance-misuse referrals in the month", "higher", "percent", "kpi_health_treatment_started", 0.75, 0.05, 20, 0.5,
    ),
    MeasureDef(
        "reo_binary_12m", "reoffending", "12-month proven reoffending rate (people served)",
        "Share of the people served in the cohort quarter with a proven reoffence within 12 months (MoJ definition: offence within 12 months, proven within 18).",
        "people served in the cohort quarter who reoffended within 12 months",
        "people served in the cohort quarter", "lower", "percent", "kpi_reoffending_binary", 0.35, 0.03, 30, 0.0,
    ),
)

MEASURES_BY_CODE = {measure.code: measure for measure in MEASURES}
SERVICE_TYPES = ("crc", "ttg", "em", "health")
SERVICE_NAMES = {
    "crc": "Probation (CRC) services",
    "ttg": "Through-the-gate resettlement",
    "em": "Electronic monitoring",
    "health": "Health services for offenders",
}
CONTRACT_PREFIX = {"crc": "CRC", "ttg": "TTG", "em": "EM", "health": "HLT"}


def measures_for(service_type: str) -> list[MeasureDef]:
    return [measure for measure in MEASURES if measure.service_type == service_type]

"""Declared specs of the providers' returns.

One spec per return type drives validation (``contracts.ingest``), the generated
documentation (``cjmonitor specs``) and the synthetic generator (``cjmonitor.demo``),
so the three cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# The criminal-justice system measures return (contracts.system): an area-level return from a partner such as the
# Local Criminal Justice Board, ingested like the others but stored in system_measure_value.
SYSTEM_RETURN_TYPE = "cjs_system_measures"

RETURN_TYPES = (
    "crc_caseload",
    "ttg_resettlement",
    "em_orders",
    "health_referrals",
    "reoffending_cohort",
    "kpi_aggregate",
)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # str, date, datetime, int, float, yn, bool01
    required: bool = True
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""
    pseudonymise: bool = False  # a raw person identifier: replaced by a keyed hash at load
    optional: bool = False  # added in a later spec version: a file may leave the whole column out (read as blank)


@dataclass(frozen=True)
class ReturnSpec:
    return_type: str
    grain: str
    description: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]  # no two rows may share these values
    period_columns: tuple[str, ...]  # a row belongs to the period if any of these dates falls in it
    order_rules: tuple[tuple[str, str], ...] = ()  # (earlier, later): the later date may not precede the earlier
    le_rules: tuple[tuple[str, str], ...] = ()  # (smaller, larger) numbers: e.g. numerator <= denominator
    frequency: str = "monthly"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> ColumnSpec:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


_COMMON = (
    ColumnSpec("contract_id", "str", description="The contract the record is delivered under, e.g. CRC-E23000036"),
    ColumnSpec("area_code", "str", description="ONS code of the police force area the person is managed in"),
)
_PERSON = ColumnSpec(
    "person_id", "str", description="The provider's own identifier for the person; pseudonymised at load", pseudonymise=True
)
_SEX = ColumnSpec("sex", "str", allowed=("M", "F"), description="M or F")
_AGE_BAND = ColumnSpec("age_band", "str", allowed=("18-20", "21-24", "25-34", "35-49", "50+"), description="Age band at start")
# Equality monitoring (spec v2): optional columns, so returns made from the v1 template still load.
ETHNICITY_GROUPS = ("Asian", "Black", "Mixed", "White", "Other", "Not stated")
_ETHNICITY = ColumnSpec("ethnicity_group", "str", required=False, optional=True, allowed=ETHNICITY_GROUPS,
                        description="Self-declared ethnic group, ONS 2021 high-level groups (blank or 'Not stated' if not known)")
# Spec v3: the Justice Data Lab's fourth measure, an optional column (v1 and v2 files still load).
_CUSTODIAL_FIRST = ColumnSpec("custodial_first", "bool01", required=False, optional=True,
                              description="1 if the first proven reoffence led to a custodial sentence, 0 if not; "
                                          "blank if there was no proven reoffence or it is not known")
_CARE_LEAVER = ColumnSpec("care_leaver", "yn", required=False, optional=True,
                          description="Y if the person was looked after by a local authority as a child (a care leaver), N if not, blank if not known")

SPECS: dict[str, ReturnSpec] = {
    "crc_caseload": ReturnSpec(
        return_type="crc_caseload",
        grain="person x order",
        description="Community orders, suspended sentence orders and licences that started or ended in the month.",
        columns=(
            *_COMMON,
            ColumnSpec("order_ref", "str", description="The provider's unique reference for the order"),
            _PERSON,
            ColumnSpec("order_type", "str", allowed=("CO", "SSO", "LICENCE"), description="Community order, suspended sentence order or licence"),
            ColumnSpec("start_date", "date", description="Order or licence start (allocation) date"),
            ColumnSpec("first_appointment_date", "date", required=False, description="First face-to-face appointment"),
            ColumnSpec("sentence_plan_date", "date", required=False, description="Initial sentence plan completed"),
            ColumnSpec("upw_hours_ordered", "float", required=False, minimum=0, maximum=300, description="Unpaid work hours ordered (0-300)"),
            ColumnSpec("upw_hours_delivered", "float", required=False, minimum=0, maximum=300, description="Unpaid work hours delivered to date"),
            ColumnSpec("end_date", "date", required=False, description="Date the order ended, if it ended"),
            ColumnSpec("outcome", "str", allowed=("ongoing", "completed", "revoked_breach", "revoked_reoffence", "other"), description="Order outcome"),
            _AGE_BAND,
            _SEX,
            ColumnSpec("risk_band", "str", allowed=("low", "medium", "high"), description="Risk of reoffending band"),
            _ETHNICITY,
            _CARE_LEAVER,
        ),
        key=("order_ref",),
        period_columns=("start_date", "end_date"),
        order_rules=(("start_date", "first_appointment_date"), ("start_date", "sentence_plan_date"), ("start_date", "end_date")),
        le_rules=(("upw_hours_delivered", "upw_hours_ordered"),),
    ),
    "ttg_resettlement": ReturnSpec(
        return_type="ttg_resettlement",
        grain="person x custody episode",
        description="Custody episodes with a reception or a release in the month.",
        columns=(
            *_COMMON,
            ColumnSpec("episode_ref", "str", description="The provider's unique reference for the custody episode"),
            _PERSON,
            ColumnSpec("reception_date", "date", description="Reception into custody"),
            ColumnSpec("resettlement_plan_date", "date", required=False, description="Resettlement plan completed"),
            ColumnSpec("release_date", "date", required=False, description="Release date, if released"),
            ColumnSpec("accommodation_first_night", "str", required=False, allowed=("settled", "unsettled", "homeless", "unknown"), description="Accommodation on the first night after release"),
            ColumnSpec("ete_on_release", "yn", required=False, description="In employment, education or training on release (Y/N)"),
            _AGE_BAND,
            _SEX,
        ),
        key=("episode_ref",),
        period_columns=("reception_date", "release_date"),
        order_rules=(("reception_date", "resettlement_plan_date"), ("reception_date", "release_date")),
    ),
    "em_orders": ReturnSpec(
        return_type="em_orders",
        grain="person x order",
        description="Electronic monitoring orders that started or ended in the month.",
        columns=(
            *_COMMON,
            ColumnSpec("order_ref", "str", description="The supplier's unique reference for the order"),
            _PERSON,
            ColumnSpec("order_start", "datetime", description="Order start or release (YYYY-MM-DD HH:MM)"),
            ColumnSpec("tag_fitted_at", "datetime", required=False, description="When the tag was fitted (YYYY-MM-DD HH:MM)"),
            ColumnSpec("curfew_hours", "float", minimum=0, maximum=16, description="Curfew hours a day"),
            ColumnSpec("violations", "int", minimum=0, maximum=500, description="Violations notified so far"),
            ColumnSpec("violations_responded_in_time", "int", minimum=0, maximum=500, description="Violations notified to the responsible officer within the target time"),
            ColumnSpec("order_end", "date", required=False, description="Order end date, if ended"),
            ColumnSpec("outcome", "str", allowed=("ongoing", "completed", "breached", "revoked"), description="Order outcome"),
        ),
        key=("order_ref",),
        period_columns=("order_start", "order_end"),
        order_rules=(("order_start", "order_end"),),
        le_rules=(("violations_responded_in_time", "violations"),),
    ),
    "health_referrals": ReturnSpec(
        return_type="health_referrals",
        grain="person x referral",
        description="Referrals to liaison and diversion or substance-misuse services received in the month.",
        columns=(
            *_COMMON,
            ColumnSpec("referral_ref", "str", description="The provider's unique reference for the referral"),
            _PERSON,
            ColumnSpec("service", "str", allowed=("liaison_diversion", "substance_misuse"), description="Service referred to"),
            ColumnSpec("referral_date", "date", description="Referral received"),
            ColumnSpec("assessed_date", "date", required=False, description="Assessment completed"),
            ColumnSpec("treatment_start_date", "date", required=False, description="Community treatment started"),
            ColumnSpec("released_from_prison", "yn", description="Referred on release from prison with a treatment need (Y/N)"),
            ColumnSpec("continuity_of_care", "str", allowed=("Y", "N", "NA"), description="Released from prison and started community treatment within 21 days (Y/N; NA if not a prison release)"),
        ),
        key=("referral_ref",),
        period_columns=("referral_date",),
        order_rules=(("referral_date", "assessed_date"), ("referral_date", "treatment_start_date")),
    ),
    "reoffending_cohort": ReturnSpec(
        return_type="reoffending_cohort",
        grain="person (quarterly cohort)",
        description=(
            "Everyone in the area's proven-reoffending cohort for the quarter (served by the service or not), "
            "with 12-month proven reoffending after a 6-month waiting period. Sent once the follow-up is complete."
        ),
        columns=(
            *_COMMON,
            _PERSON,
            ColumnSpec("cohort_date", "date", description="Date the person entered the cohort (release, sentence or caution)"),
            ColumnSpec("age", "int", minimum=18, maximum=100, description="Age at cohort date"),
            _SEX,
            ColumnSpec("offence_group", "str", allowed=("theft", "violence", "drugs", "public_order", "burglary", "other"), description="Index offence group"),
            ColumnSpec("prior_offences", "int", minimum=0, maximum=300, description="Previous proven offences"),
            ColumnSpec("risk_score", "float", minimum=0, maximum=100, description="OGRS-style risk of reconviction score (0-100)"),
            ColumnSpec("sentence_type", "str", allowed=("custody_short", "community", "suspended"), description="Index disposal"),
            ColumnSpec("served", "bool01", description="1 if the person received the commissioned service, else 0"),
            ColumnSpec("reoffended_12m", "bool01", description="1 if a proven reoffence within 12 months"),
            ColumnSpec("reoffences_12m", "int", minimum=0, maximum=200, description="Number of proven reoffences within 12 months"),
            ColumnSpec("days_to_first", "int", required=False, minimum=0, maximum=366, description="Days to first proven reoffence, blank if none"),
            _ETHNICITY,
            _CARE_LEAVER,
            _CUSTODIAL_FIRST,
        ),
        key=("person_id", "cohort_date"),
        period_columns=("cohort_date",),
        frequency="quarterly",
    ),
    "kpi_aggregate": ReturnSpec(
        return_type="kpi_aggregate",
        grain="contract x measure x month",
        description="Numerator and denominator per KPI, for providers who can only report aggregates.",
        columns=(
            ColumnSpec("contract_id", "str", description="The contract, e.g. HLT-W15000001"),
            ColumnSpec("measure_code", "str", description="A code from the KPI catalogue (cjmonitor specs lists them)"),
            ColumnSpec("period", "str", description="The month, YYYY-MM"),
            ColumnSpec("numerator", "int", minimum=0, description="Count meeting the measure"),
            ColumnSpec("denominator", "int", minimum=0, description="Count eligible for the measure"),
        ),
        key=("contract_id", "measure_code", "period"),
        period_columns=(),
        le_rules=(("numerator", "denominator"),),
    ),
}

FILE_NAME_RE = re.compile(
    r"^(?P<provider>[a-z0-9][a-z0-9-]*)_(?P<return_type>[a-z][a-z0-9_]*[a-z0-9])_"
    r"(?P<period>\d{4}-(0[1-9]|1[0-2]))(_v(?P<version>[1-9][0-9]*))?\.(?P<ext>csv|xlsx)$"
)


@dataclass(frozen=True)
class ReturnFileName:
    provider_id: str
    return_type: str
    period: str
    version: int | None
    extension: str


def parse_file_name(name: str, return_types: Iterable[str] | None = None) -> ReturnFileName | None:
    """Recognise ``<provider>_<return type>_<YYYY-MM>[_v<n>].csv|xlsx``; anything else is None.

    ``return_types``: the types to accept, by default the built-in ones (:data:`RETURN_TYPES`); pass the
    built-in and declared types (``contracts.declared``) together to recognise a local service's returns.
    Provider ids hold no underscore, so the type is whatever lies between the first ``_`` and the period.
    """
    match = FILE_NAME_RE.match(name)
    if not match or match.group("return_type") not in (RETURN_TYPES if return_types is None else tuple(return_types)):
        return None
    version = match.group("version")
    return ReturnFileName(
        provider_id=match.group("provider"),
        return_type=match.group("return_type"),
        period=match.group("period"),
        version=int(version) if version else None,
        extension=match.group("ext"),
    )

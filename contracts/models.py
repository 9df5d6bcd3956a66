"""SQLModel tables for the commissioning domain (design.md, "Data model").

Business keys carry unique constraints; every person-level record belongs to the
submission (provider x return type x period x version) it came from, so earlier
versions stay queryable and "current" is a property of the submission.
Person keys are keyed hashes made at load; raw identifiers never reach the database.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Area(SQLModel, table=True):
    """A criminal-justice area (police force area), keyed by its ONS code."""

    code: str = Field(primary_key=True, max_length=9)
    name: str = Field(max_length=80, unique=True)
    region: str = Field(max_length=40)
    commissioner_type: str = Field(max_length=20)  # PCC, PFCC, Mayor
    population_m: float


class Provider(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)  # slug used in return file names
    name: str = Field(max_length=120, unique=True)
    kind: str = Field(max_length=40)  # private, voluntary, NHS trust, ...
    return_mode: str = Field(default="person", max_length=10)  # person-level returns, or aggregate (kpi_aggregate) only


class Contract(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    area_code: str = Field(foreign_key="area.code", index=True)
    provider_id: str = Field(foreign_key="provider.id", index=True)
    service_type: str = Field(max_length=20, index=True)  # crc, ttg, em, health
    name: str = Field(max_length=160)
    start_date: date
    end_date: date
    annual_value_gbp: float
    return_due_day: int = 15  # monthly returns are due by this day of the following month
    framework: str | None = Field(default=None, max_length=40)  # KPI framework named in the register (None: the service's default)
    closed_on: date | None = None  # removed from the register: closed from this date, its data stay


class Office(SQLModel, table=True):
    """The commissioning office whose register this database holds (one row)."""

    id: int = Field(default=1, primary_key=True)
    name: str = Field(max_length=160)
    # office.lcjb_commentary of the register as JSON: [{area, period, partner, text}] (the LCJB pack's commentary page)
    lcjb_commentary: str | None = Field(default=None, sa_type=Text)


class RegisterApply(SQLModel, table=True):
    """One ``cjmonitor register apply`` that changed something: when, which file (sha256) and the diff."""

    __tablename__ = "register_apply"
    id: int | None = Field(default=None, primary_key=True)
    applied_at: datetime
    source: str = Field(max_length=400)
    sha256: str = Field(max_length=64)
    effective_date: date
    diff: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))  # JSON list of changes


class ContractVariation(SQLModel, table=True):
    """A dated change to a contract: renegotiated terms, a new provider. ITS interventions."""

    __tablename__ = "contract_variation"
    __table_args__ = (UniqueConstraint("contract_id", "effective_date", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    effective_date: date
    kind: str = Field(max_length=40)  # renegotiation, new_provider, service_redesign
    measure_code: str | None = Field(default=None, max_length=40)  # the KPI the change targets; None = all of them
    description: str = Field(sa_column=Column(Text, nullable=False))


class PaymentTerms(SQLModel, table=True):
    """A contract's payment rules from a date: service-credit cap and payment-by-results terms.

    Renegotiated terms are a new row with a later ``valid_from``; the history stays.
    """

    __tablename__ = "payment_terms"
    __table_args__ = (UniqueConstraint("contract_id", "valid_from"),)
    id: int | None = Field(default=None, primary_key=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    valid_from: date
    service_credit_cap_pct: float = 10.0  # credits in a quarter never exceed this share of the quarter's fee
    pbr_price_per_reoffender_gbp: float = 0.0  # outcome payment per person kept from reoffending
    pbr_threshold_points: float = 0.0  # no payment unless the reduction in the binary rate reaches this
    pbr_requires_significance: bool = True  # and the whole interval lies below zero
    pbr_cap_gbp: float | None = None  # most that can be paid for one set of cohorts
    # Frequency outcome (Peterborough design): paid per reoffence avoided once the reduction in reoffences
    # per person against the comparison group reaches this share of the comparison group's frequency.
    pbr_frequency_price_gbp: float = 0.0
    pbr_frequency_threshold_pct: float = 0.0


class Measure(SQLModel, table=True):
    """The KPI catalogue."""

    code: str = Field(primary_key=True, max_length=40)
    service_type: str = Field(max_length=20, index=True)
    name: str = Field(max_length=120)
    definition: str = Field(sa_column=Column(Text, nullable=False))
    numerator: str = Field(sa_column=Column(Text, nullable=False))
    denominator: str = Field(sa_column=Column(Text, nullable=False))
    direction: str = Field(max_length=6)  # higher / lower is better
    unit: str = Field(max_length=20)  # percent, rate, hours
    sql_name: str | None = Field(default=None, max_length=80)


class Target(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("contract_id", "measure_code", "valid_from"),)
    id: int | None = Field(default=None, primary_key=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    measure_code: str = Field(foreign_key="measure.code")
    valid_from: date
    valid_to: date | None = None
    value: float  # a proportion for percent measures
    tolerance: float  # amber band below (or above, for lower-is-better) the target
    min_volume: int = 20
    service_credit_pct: float = 0.0  # share of the monthly fee withheld for a red month


class Submission(SQLModel, table=True):
    """One received file: a provider's return of one type for one period, in one version."""

    __table_args__ = (
        UniqueConstraint("provider_id", "return_type", "period", "version"),
        UniqueConstraint("sha256", "mapping_sha256", name="uq_submission_sha256_mapping"),
        Index("ix_submission_current", "provider_id", "return_type", "period", "is_current"),
    )
    id: int | None = Field(default=None, primary_key=True)
    provider_id: str = Field(foreign_key="provider.id", index=True)
    return_type: str = Field(max_length=30)
    period: str = Field(max_length=7, index=True)  # YYYY-MM
    version: int
    file_name: str = Field(max_length=200)
    source: str = Field(max_length=200)
    sha256: str = Field(max_length=64)
    received_at: datetime
    loaded_at: datetime | None = None
    status: str = Field(max_length=20)  # accepted, rejected
    is_current: bool = False
    is_late: bool = False
    rows: int = 0
    errors: int = 0
    warnings: int = 0
    # The provider's mapping the file was read through (contracts.mapping): canonical JSON and its sha256;
    # "" when the file was read as the template. The same bytes may be read again through a new mapping.
    mapping_sha256: str = Field(default="", max_length=64)
    mapping_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ReturnMappingRecord(SQLModel, table=True):
    """A provider's declared way of sending one return type (contracts.mapping): canonical JSON and its sha256."""

    __tablename__ = "return_mapping"
    __table_args__ = (UniqueConstraint("provider_id", "return_type"),)
    id: int | None = Field(default=None, primary_key=True)
    provider_id: str = Field(foreign_key="provider.id", index=True)
    return_type: str = Field(max_length=40)
    mapping_json: str = Field(sa_column=Column(Text, nullable=False))
    sha256: str = Field(max_length=64)
    updated_at: datetime


class ValidationIssue(SQLModel, table=True):
    __tablename__ = "validation_issue"
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    severity: str = Field(max_length=10)  # error, warning
    row: int | None = None  # 1-based data row as the provider sees it in a spreadsheet (header = row 1)
    column: str | None = Field(default=None, max_length=60)
    code: str = Field(max_length=40)
    message: str = Field(sa_column=Column(Text, nullable=False))


class CrcRecord(SQLModel, table=True):
    """crc_caseload: person x order."""

    __tablename__ = "crc_record"
    __table_args__ = (UniqueConstraint("submission_id", "order_ref"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    area_code: str = Field(max_length=9)
    order_ref: str = Field(max_length=40)
    person_key: str = Field(max_length=32)
    order_type: str = Field(max_length=10)
    start_date: date
    start_period: str = Field(max_length=7)
    first_appointment_date: date | None = None
    first_appointment_wd: int | None = None  # working days from start
    sentence_plan_date: date | None = None
    sentence_plan_wd: int | None = None
    upw_hours_ordered: float | None = None
    upw_hours_delivered: float | None = None
    end_date: date | None = None
    end_period: str | None = Field(default=None, max_length=7)
    outcome: str = Field(max_length=30)
    age_band: str = Field(max_length=10)
    sex: str = Field(max_length=1)
    risk_band: str = Field(max_length=10)
    ethnicity_group: str | None = Field(default=None, max_length=12)  # None: the return did not say
    care_leaver: bool | None = None


class TtgRecord(SQLModel, table=True):
    """ttg_resettlement: person x custody episode."""

    __tablename__ = "ttg_record"
    __table_args__ = (UniqueConstraint("submission_id", "episode_ref"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    area_code: str = Field(max_length=9)
    episode_ref: str = Field(max_length=40)
    person_key: str = Field(max_length=32)
    reception_date: date
    reception_period: str = Field(max_length=7)
    resettlement_plan_date: date | None = None
    resettlement_plan_wd: int | None = None
    release_date: date | None = None
    release_period: str | None = Field(default=None, max_length=7)
    accommodation_first_night: str | None = Field(default=None, max_length=20)
    ete_on_release: str | None = Field(default=None, max_length=1)
    age_band: str = Field(max_length=10)
    sex: str = Field(max_length=1)


class EmRecord(SQLModel, table=True):
    """em_orders: person x order."""

    __tablename__ = "em_record"
    __table_args__ = (UniqueConstraint("submission_id", "order_ref"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    area_code: str = Field(max_length=9)
    order_ref: str = Field(max_length=40)
    person_key: str = Field(max_length=32)
    order_start: datetime
    start_period: str = Field(max_length=7)
    tag_fitted_at: datetime | None = None
    hours_to_fit: float | None = None
    curfew_hours: float
    violations: int
    violations_responded_in_time: int
    order_end: date | None = None
    end_period: str | None = Field(default=None, max_length=7)
    outcome: str = Field(max_length=30)


class HealthRecord(SQLModel, table=True):
    """health_referrals: person x referral."""

    __tablename__ = "health_record"
    __table_args__ = (UniqueConstraint("submission_id", "referral_ref"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    area_code: str = Field(max_length=9)
    referral_ref: str = Field(max_length=40)
    person_key: str = Field(max_length=32)
    service: str = Field(max_length=30)
    referral_date: date
    referral_period: str = Field(max_length=7)
    assessed_date: date | None = None
    assessed_wd: int | None = None
    treatment_start_date: date | None = None
    treatment_days: int | None = None  # calendar days from referral to treatment start
    released_from_prison: bool
    continuity_of_care: str = Field(max_length=2)  # Y, N, NA


class ReoffendingRecord(SQLModel, table=True):
    """reoffending_cohort: person, quarterly cohort."""

    __tablename__ = "reoffending_record"
    __table_args__ = (UniqueConstraint("submission_id", "person_key", "cohort_date"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    area_code: str = Field(max_length=9)
    person_key: str = Field(max_length=32)
    cohort_date: date
    cohort_period: str = Field(max_length=7)
    age: int
    sex: str = Field(max_length=1)
    offence_group: str = Field(max_length=30)
    prior_offences: int
    risk_score: float
    sentence_type: str = Field(max_length=20)
    served: bool
    reoffended_12m: bool
    reoffences_12m: int
    days_to_first: int | None = None
    ethnicity_group: str | None = Field(default=None, max_length=12)
    care_leaver: bool | None = None
    custodial_first: bool | None = None  # spec v3: the first proven reoffence led to custody


class AggregateRecord(SQLModel, table=True):
    """kpi_aggregate: a provider-reported numerator and denominator for contract x measure x month."""

    __tablename__ = "aggregate_record"
    __table_args__ = (UniqueConstraint("submission_id", "contract_id", "measure_code", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    measure_code: str = Field(foreign_key="measure.code")
    period: str = Field(max_length=7)
    numerator: int
    denominator: int


class KpiValue(SQLModel, table=True):
    """A KPI for one contract x measure x month: derived from records, or reported by the provider."""

    __tablename__ = "kpi_value"
    __table_args__ = (UniqueConstraint("contract_id", "measure_code", "period", "source"),)
    id: int | None = Field(default=None, primary_key=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    measure_code: str = Field(foreign_key="measure.code", index=True)
    period: str = Field(max_length=7, index=True)
    numerator: float
    denominator: float
    value: float | None = None
    source: str = Field(max_length=20)  # derived, provider_reported
    submission_ids: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # proportion: value = numerator / denominator. median: value = median days among the numerator rows
    # (those with both dates), denominator = rows in the population. count: value = numerator = rows counted,
    # denominator = months (1). ci_low, ci_high: the measure's own interval where it is not a proportion.
    kind: str = Field(default="proportion", max_length=12)
    ci_low: float | None = None
    ci_high: float | None = None


class DeclaredService(SQLModel, table=True):
    """A local service declared in the register: its whole spec as JSON (register form)."""

    __tablename__ = "declared_service"
    id: str = Field(primary_key=True, max_length=20)
    name: str = Field(max_length=120)
    return_type: str = Field(max_length=30, unique=True)
    spec: str = Field(sa_column=Column(Text, nullable=False))


class Judgement(SQLModel, table=True):
    """A KPI value judged against its target: RAG word and statistical verdict."""

    __table_args__ = (UniqueConstraint("contract_id", "measure_code", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    contract_id: str = Field(foreign_key="contract.id", index=True)
    measure_code: str = Field(foreign_key="measure.code")
    period: str = Field(max_length=7, index=True)
    value: float | None = None
    numerator: float
    denominator: float
    target: float
    tolerance: float
    rag: str = Field(max_length=12)  # Green, Amber, Red, No data
    ci_low: float | None = None
    ci_high: float | None = None
    alpha: float
    verdict: str = Field(max_length=24)  # met, not met, inconclusive, insufficient volume
    spc_signals: str = Field(default="", max_length=400)  # e.g. "shift (concern); outside limits (concern)"
    spc_variation: str = Field(default="", max_length=30)  # common cause, special cause improving / concerning
    kind: str = Field(default="proportion", max_length=12)  # proportion, median (days), count: as KpiValue.kind


class InputChecksum(SQLModel, table=True):
    """What a stored result was computed from: one row per step x scope (``contracts.incremental``).

    ``derive`` has one row per month (scope ``YYYY-MM``): the KPI values of that month were derived from the
    current accepted submissions of the month and the definitions in ``detail``. ``judge`` has one row per
    contract x measure series (scope ``contract_id|measure_code``): its judgements were made from the series' KPI
    values, target rows, variation months and the judging code. ``analyse_cohort`` has one row per contract: its
    comparison-group findings were made from its current reoffending cohort returns. A step skips a scope whose
    checksum is unchanged.
    """

    __tablename__ = "input_checksum"
    __table_args__ = (UniqueConstraint("step", "scope"),)
    id: int | None = Field(default=None, primary_key=True)
    step: str = Field(max_length=20)  # derive, judge, analyse_cohort
    scope: str = Field(max_length=120)  # YYYY-MM (derive), contract_id|measure_code (judge)
    checksum: str = Field(max_length=64)  # sha256 hex of the inputs
    rows: int = 0  # result rows the scope holds (KPI values, judgements)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Finding(SQLModel, table=True):
    """The result of a method (ITS, matching, synthetic control) run on stored data."""

    __table_args__ = (UniqueConstraint("contract_id", "measure_code", "method", "input_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    contract_id: str | None = Field(default=None, foreign_key="contract.id", index=True)
    area_code: str | None = Field(default=None, max_length=9)
    measure_code: str | None = Field(default=None, max_length=40)
    cohort: str | None = Field(default=None, max_length=40)
    method: str = Field(max_length=40)
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float | None = None
    alpha: float
    verdict: str = Field(max_length=40)
    parameters: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    input_hash: str = Field(max_length=64)
    created_at: datetime


class Artifact(SQLModel, table=True):
    """A written document: what, for whom, which period, where, and its checksum."""

    __table_args__ = (UniqueConstraint("path"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)  # scorecard, index, monthly_report, evidence_pack, error_report
    audience: str = Field(max_length=30)
    period: str | None = Field(default=None, max_length=7)
    contract_id: str | None = Field(default=None, max_length=40)
    area_code: str | None = Field(default=None, max_length=9)
    path: str = Field(max_length=400)
    sha256: str = Field(max_length=64)
    created_at: datetime


RECORD_TABLES: dict[str, type[SQLModel]] = {
    "crc_caseload": CrcRecord,
    "ttg_resettlement": TtgRecord,
    "em_orders": EmRecord,
    "health_referrals": HealthRecord,
    "reoffending_cohort": ReoffendingRecord,
    "kpi_aggregate": AggregateRecord,
}


class Recipient(SQLModel, table=True):
    """Someone who receives documents by email: a commissioner, a contract manager or a provider contact."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=120)
    active: bool = True


class RecipientScope(SQLModel, table=True):
    """What a recipient may receive: an area, a contract or a provider."""

    __tablename__ = "recipient_scope"
    __table_args__ = (UniqueConstraint("recipient_id", "kind", "ref"),)
    id: int | None = Field(default=None, primary_key=True)
    recipient_id: int = Field(foreign_key="recipient.id", index=True)
    kind: str = Field(max_length=10)  # area, contract, provider
    ref: str = Field(max_length=40)  # area code, contract id or provider id


class Delivery(SQLModel, table=True):
    """One email to one recipient for one period: what was attached, and what the SMTP server said."""

    __table_args__ = (UniqueConstraint("recipient_id", "period", "attempt_key"),)
    id: int | None = Field(default=None, primary_key=True)
    recipient_id: int = Field(foreign_key="recipient.id", index=True)
    period: str = Field(max_length=7, index=True)
    attempt_key: str = Field(max_length=40)  # "first", or a timestamp for an explicit --resend
    status: str = Field(max_length=12)  # sent, failed, refused
    attempts: int = 0
    documents: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))  # JSON: path, sha256
    smtp_response: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime
    sent_at: datetime | None = None


class SystemMeasureValue(SQLModel, table=True):
    """cjs_system_measures: one criminal-justice system measure for an area and a month or quarter (issue #19).

    ``breakdown`` and ``group`` are empty strings for the whole-area figure, so the business key is unique.
    """

    __tablename__ = "system_measure_value"
    __table_args__ = (UniqueConstraint("area_code", "period", "agency", "measure", "breakdown", "group"),
                      Index("ix_system_measure_series", "agency", "measure", "period"))
    id: int | None = Field(default=None, primary_key=True)
    area_code: str = Field(foreign_key="area.code", index=True, max_length=9)
    period: str = Field(max_length=7)  # YYYY-MM or YYYY-Qn
    period_type: str = Field(max_length=7)  # month, quarter
    agency: str = Field(max_length=20)
    measure: str = Field(max_length=60)
    breakdown: str = Field(default="", max_length=20)  # "", sex, age_band, ethnic_group
    group: str = Field(default="", max_length=20)
    numerator: float | None = None
    denominator: float | None = None
    value: float
    unit: str = Field(max_length=10)
    source: str = Field(max_length=200)
    loaded_at: datetime

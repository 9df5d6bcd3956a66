"""Contract variations as data: a dated change to a contract, and the new KPI terms it brings.

A renegotiation that restates a KPI's target closes the target row in force (``valid_to`` = the day
before) and opens a new one from the variation's date, so the judgement of every month uses the terms
in force then, and the ITS and SPC engines see the variation as a break. Nothing is deleted: the
history of terms is the renegotiation history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session, select

from contracts.catalogue import FRAMEWORK_MEASURES, measures_for
from contracts.errors import ContractsError
from contracts.models import Contract, ContractVariation, Measure, Target

VARIATION_KINDS = ("renegotiation", "new_provider", "service_redesign", "rollout", "other")
# ``rollout``: the service (or a change to it) starts in this area on this date, aimed at ``kpi``; the same
# roll-out in other areas of the same service, at their own dates, makes a staggered roll-out (contracts.analysis).


@dataclass(frozen=True)
class NewTerms:
    target: float | None = None
    tolerance: float | None = None
    min_volume: int | None = None
    service_credit_pct: float | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.target, self.tolerance, self.min_volume, self.service_credit_pct))


def _check(session: Session, contract: Contract, effective: date, kind: str, measure_code: str | None,
           terms: NewTerms) -> None:
    if kind not in VARIATION_KINDS:
        raise ContractsError(f"variation kind '{kind}' is not one of {', '.join(VARIATION_KINDS)}")
    if effective.day != 1:
        raise ContractsError(f"a variation takes effect from the first of a month; got {effective.isoformat()}")
    if contract.start_date and effective <= contract.start_date:
        raise ContractsError(f"{contract.id} started on {contract.start_date.isoformat()}: a variation must come after it")
    if measure_code is not None:
        allowed = {m.code for m in measures_for(contract.service_type)}
        if contract.service_type == "crc":
            allowed |= {m.code for m in measures_for("reoffending")}
        # A contract's KPIs are the ones its register gave it terms for (framework or declared KPIs).
        allowed |= set(session.exec(select(Target.measure_code).where(Target.contract_id == contract.id)).all())
        if measure_code not in allowed:
            raise ContractsError(f"measure '{measure_code}' is not a KPI of {contract.id} ({contract.service_type}); "
                                 f"its KPIs are: {', '.join(sorted(allowed))}")
    if terms.any() and measure_code is None:
        raise ContractsError("new terms (target, tolerance, minimum volume, credit) need --measure: which KPI they are for")
    measure_row = session.get(Measure, measure_code) if measure_code is not None else None
    unit = measure_row.unit if measure_row is not None else "percent"
    if not str(unit).startswith("percent"):
        # a declared KPI in days (median_days) or a count (volume): target and tolerance in its own unit
        for name, value in (("target", terms.target), ("tolerance", terms.tolerance)):
            if value is not None and value < 0:
                raise ContractsError(f"the {name} of {measure_code} is in {unit} and cannot be negative; got {value}")
    elif terms.target is not None and not 0 <= terms.target <= 1:
        raise ContractsError(f"the target is a proportion between 0 and 1 (0.85 for 85%); got {terms.target}")
    if str(unit).startswith("percent") and terms.tolerance is not None and not 0 <= terms.tolerance < 1:
        raise ContractsError(f"the tolerance is a proportion (0.05 for 5 points); got {terms.tolerance}")
    if terms.min_volume is not None and terms.min_volume < 0:
        raise ContractsError(f"the minimum volume cannot be negative; got {terms.min_volume}")
    if terms.service_credit_pct is not None and not 0 <= terms.service_credit_pct <= 100:
        raise ContractsError(f"the service credit is a percentage of the monthly fee (0-100); got {terms.service_credit_pct}")


def record_variation(session: Session, contract_id: str, effective: date, kind: str, description: str, *,
                     measure_code: str | None = None, terms: NewTerms | None = None) -> dict:
    """Record a variation (idempotent: the same contract, date and kind is updated, not duplicated) and its terms."""
    terms = terms or NewTerms()
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise ContractsError(f"no contract '{contract_id}': `cjmonitor contracts` lists them")
    _check(session, contract, effective, kind, measure_code, terms)
    variation = session.exec(select(ContractVariation).where(
        ContractVariation.contract_id == contract_id, ContractVariation.effective_date == effective,
        ContractVariation.kind == kind)).first()
    if variation is None:
        variation = ContractVariation(contract_id=contract_id, effective_date=effective, kind=kind,
                                      measure_code=measure_code, description=description)
        session.add(variation)
    else:
        variation.description, variation.measure_code = description, measure_code
    result = {"contract_id": contract_id, "effective_date": effective.isoformat(), "kind": kind,
              "measure_code": measure_code, "description": description, "terms": None}
    if terms.any():
        result["terms"] = _restate_target(session, contract_id, measure_code, effective, terms)
    session.flush()
    return result


def restate_terms(session: Session, contract_id: str, measure_code: str, effective: date, terms: NewTerms) -> dict:
    """Close the terms of ``measure_code`` in force on ``effective`` and open ``terms`` from that date (fields left
    None keep the old value). The register calls this for each KPI a variation restates."""
    return _restate_target(session, contract_id, measure_code, effective, terms)


def _restate_target(session: Session, contract_id: str, measure_code: str, effective: date, terms: NewTerms) -> dict:
    rows = session.exec(select(Target).where(Target.contract_id == contract_id, Target.measure_code == measure_code)
                        .order_by(Target.valid_from)).all()
    later = [t for t in rows if t.valid_from > effective]
    if later:
        raise ContractsError(f"{contract_id} already has terms for {measure_code} from {later[0].valid_from.isoformat()}, "
                             f"after {effective.isoformat()}: record variations in date order")
    same = next((t for t in rows if t.valid_from == effective), None)
    before = [t for t in rows if t.valid_from < effective and (t.valid_to is None or t.valid_to >= effective)]
    base = same or (before[-1] if before else None)
    measure = FRAMEWORK_MEASURES.get(measure_code)
    if base is None and measure is None and None in (terms.target, terms.tolerance, terms.min_volume,
                                                     terms.service_credit_pct):
        raise ContractsError(f"{contract_id} has no terms for {measure_code} yet: give its target, tolerance, minimum "
                             "volume and service credit in full")
    values = {
        "value": terms.target if terms.target is not None else (base.value if base else measure.default_target),
        "tolerance": terms.tolerance if terms.tolerance is not None else (base.tolerance if base else measure.default_tolerance),
        "min_volume": terms.min_volume if terms.min_volume is not None else (base.min_volume if base else measure.min_volume),
        "service_credit_pct": (terms.service_credit_pct if terms.service_credit_pct is not None
                               else (base.service_credit_pct if base else measure.service_credit_pct)),
    }
    for old in before:
        old.valid_to = effective - timedelta(days=1)
    if same is None:
        session.add(Target(contract_id=contract_id, measure_code=measure_code, valid_from=effective, **values))
    else:
        for name, value in values.items():
            setattr(same, name, value)
    return {"measure_code": measure_code, "valid_from": effective.isoformat(), **values,
            "replaces": ({"value": before[-1].value, "tolerance": before[-1].tolerance, "valid_from": before[-1].valid_from.isoformat()}
                         if before else None)}


def target_history(session: Session, contract_id: str) -> dict:
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise ContractsError(f"no contract '{contract_id}': `cjmonitor contracts` lists them")
    rows = session.exec(select(Target).where(Target.contract_id == contract_id)
                        .order_by(Target.measure_code, Target.valid_from)).all()
    variations = session.exec(select(ContractVariation).where(ContractVariation.contract_id == contract_id)
                              .order_by(ContractVariation.effective_date)).all()
    return {
        "contract_id": contract_id,
        "targets": [{"measure_code": t.measure_code, "valid_from": t.valid_from.isoformat(),
                     "valid_to": t.valid_to.isoformat() if t.valid_to else None, "target": t.value,
                     "tolerance": t.tolerance, "min_volume": t.min_volume, "service_credit_pct": t.service_credit_pct}
                    for t in rows],
        "variations": [{"effective_date": v.effective_date.isoformat(), "kind": v.kind, "measure_code": v.measure_code,
                        "description": v.description} for v in variations],
    }

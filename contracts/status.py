"""Which returns were expected for a period, and what became of each: received, accepted,
quarantined, late or missing."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlmodel import Session, select

from contracts.ingest import deadline_for
from contracts.models import Contract, Provider, Submission

SERVICE_RETURN = {"crc": "crc_caseload", "ttg": "ttg_resettlement", "em": "em_orders", "health": "health_referrals"}


def expected_returns(session: Session, period: str) -> list[dict]:
    """One expected monthly return per provider x return type with a contract live in the period."""
    first = pd.Timestamp(f"{period}-01").date()
    last = (pd.Timestamp(f"{period}-01") + pd.offsets.MonthEnd(0)).date()
    from contracts.declared import load_services

    providers = {p.id: p for p in session.exec(select(Provider)).all()}
    declared = load_services(session)
    service_return = {**SERVICE_RETURN, **{s.id: s.return_type for s in declared.values()}}
    expected: dict[tuple[str, str], dict] = {}
    for contract in session.exec(select(Contract)).all():
        if contract.start_date > last or contract.end_date < first:
            continue
        provider = providers[contract.provider_id]
        return_type = "kpi_aggregate" if provider.return_mode == "aggregate" else service_return[contract.service_type]
        service = declared.get(contract.service_type)
        due = deadline_for(period, return_type, contract.return_due_day,
                           service.return_spec if service and return_type != "kpi_aggregate" else None)
        entry = expected.setdefault((provider.id, return_type), {
            "provider_id": provider.id, "provider_name": provider.name, "return_type": return_type, "due": due,
            "contracts": 0})
        entry["due"] = min(entry["due"], due)
        entry["contracts"] += 1
    return sorted(expected.values(), key=lambda e: (e["provider_id"], e["return_type"]))


def return_status(session: Session, period: str, now: datetime | None = None) -> list[dict]:
    """The status of every expected return for ``period`` (and of any unexpected one that arrived)."""
    now = now or datetime.now(UTC)
    submissions = session.exec(select(Submission).where(Submission.period == period).order_by(Submission.version)).all()
    rows = []
    expected = expected_returns(session, period)
    keys = {(e["provider_id"], e["return_type"]) for e in expected}
    for sub in submissions:
        if (sub.provider_id, sub.return_type) not in keys and sub.return_type != "reoffending_cohort":
            provider = session.get(Provider, sub.provider_id)
            expected.append({"provider_id": sub.provider_id, "provider_name": provider.name, "return_type": sub.return_type,
                             "due": deadline_for(period, sub.return_type), "contracts": 0})
            keys.add((sub.provider_id, sub.return_type))
    for entry in expected:
        mine = [s for s in submissions if s.provider_id == entry["provider_id"] and s.return_type == entry["return_type"]]
        current = next((s for s in mine if s.is_current), None)
        accepted = [s for s in mine if s.status == "accepted"]
        due = entry["due"]
        due_aware = due if due is None or due.tzinfo else due.replace(tzinfo=UTC)
        first_received = _aware(mine[0].received_at) if mine else None
        first_accepted = _aware(accepted[0].received_at) if accepted else None
        if current is not None:
            status = "accepted"
        elif mine:
            status = "quarantined"
        elif due_aware is not None and now > due_aware:
            status = "missing"
        else:
            status = "not yet due"
        late = bool(due_aware and ((first_accepted and first_accepted > due_aware)
                                   or (not accepted and now > due_aware)))
        rows.append({
            **entry,
            "due": due_aware.isoformat() if due_aware else None,
            "status": status,
            "late": late,
            "versions": len(mine),
            "current_version": current.version if current else None,
            "current_submission_id": current.id if current else None,
            "first_received": first_received.isoformat() if first_received else None,
            "rejected_versions": sum(s.status == "rejected" for s in mine),
        })
    return rows


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

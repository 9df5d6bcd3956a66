"""Deliver each period's documents by email to the people entitled to them, and only them.

Recipients and their scopes are data (tables ``recipient`` and ``recipient_scope``,
managed with ``cjmonitor recipients``):

* an **area** scope (a commissioner) receives that area's monthly report, its quarterly LCJB pack (in a
  quarter's last month) and every scorecard
  and evidence pack of contracts in the area;
* a **contract** scope (a contract manager) receives that contract's scorecard and evidence pack;
* a **provider** scope receives that provider's own scorecards only.

At send time every attachment is checked again against the recipient's scopes and against
the checksum recorded when it was written; a delivery with any document out of scope is
refused and logged, never sent. Each delivery (recipient, period, documents with checksums,
time, SMTP response) is logged in the database; a rerun sends nothing twice unless asked to
resend, and a failed send is retried with backoff and reported.

SMTP settings come from the environment, never from files in the repository:
``CJMONITOR_SMTP_HOST``, ``CJMONITOR_SMTP_PORT`` (25), ``CJMONITOR_SMTP_STARTTLS`` (0/1),
``CJMONITOR_SMTP_USER``, ``CJMONITOR_SMTP_PASSWORD``, ``CJMONITOR_SMTP_FROM``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import os
import smtplib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import Session, select

from cjmonitor.db import session_scope
from cjmonitor.errors import ConfigError, NotFoundError
from cjmonitor.settings import Settings
from contracts.catalogue import MEASURES_BY_CODE
from contracts.models import (
    Area,
    Artifact,
    Contract,
    Delivery,
    Judgement,
    Provider,
    Recipient,
    RecipientScope,
)

log = logging.getLogger(__name__)

DOCUMENT_KINDS = ("monthly_report", "scorecard", "evidence_pack", "lcjb_pack")  # lcjb_pack: quarter-end months
SCOPE_KINDS = ("area", "contract", "provider")
SMALL_COUNT = 5  # counts below this are not written in email bodies


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    sender: str = "cjmonitor@localhost"
    timeout_s: float = 30.0
    retries: int = 3

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        host = os.environ.get("CJMONITOR_SMTP_HOST")
        if not host:
            return None
        try:
            port = int(os.environ.get("CJMONITOR_SMTP_PORT", "25"))
        except ValueError:
            raise ConfigError("CJMONITOR_SMTP_PORT must be a port number") from None
        return cls(host=host, port=port, starttls=os.environ.get("CJMONITOR_SMTP_STARTTLS", "0") == "1",
                   user=os.environ.get("CJMONITOR_SMTP_USER") or None,
                   password=os.environ.get("CJMONITOR_SMTP_PASSWORD") or None,
                   sender=os.environ.get("CJMONITOR_SMTP_FROM", "cjmonitor@localhost"))


# ------------------------------------------------------------------ scopes and documents


def scopes_of(session: Session, recipient_id: int) -> list[tuple[str, str]]:
    return [(s.kind, s.ref) for s in session.exec(select(RecipientScope).where(RecipientScope.recipient_id == recipient_id)
                                                  .order_by(RecipientScope.kind, RecipientScope.ref)).all()]


def _document(artifact: Artifact, contracts: dict[str, Contract]) -> dict:
    contract = contracts.get(artifact.contract_id) if artifact.contract_id else None
    return {"path": artifact.path, "kind": artifact.kind, "sha256": artifact.sha256,
            "area_code": artifact.area_code or (contract.area_code if contract else None),
            "contract_id": artifact.contract_id, "provider_id": contract.provider_id if contract else None}


def in_scope(document: dict, scopes: list[tuple[str, str]]) -> bool:
    """Whether one of the scopes entitles its holder to the document."""
    for kind, ref in scopes:
        if kind == "area" and document["area_code"] == ref:
            return True
        if kind == "contract" and document["contract_id"] == ref and document["kind"] in ("scorecard", "evidence_pack"):
            return True
        if kind == "provider" and document["provider_id"] == ref and document["kind"] == "scorecard":
            return True
    return False


def period_documents(session: Session, period: str) -> list[dict]:
    contracts = {c.id: c for c in session.exec(select(Contract)).all()}
    artifacts = session.exec(select(Artifact).where(Artifact.period == period, Artifact.kind.in_(DOCUMENT_KINDS))
                             .order_by(Artifact.kind, Artifact.path)).all()
    return [_document(a, contracts) for a in artifacts]


def _contracts_in_scope(session: Session, scopes: list[tuple[str, str]]) -> list[Contract]:
    chosen = []
    for contract in session.exec(select(Contract).order_by(Contract.id)).all():
        if any((k == "area" and contract.area_code == r) or (k == "contract" and contract.id == r)
               or (k == "provider" and contract.provider_id == r) for k, r in scopes):
            chosen.append(contract)
    return chosen


def summary_text(session: Session, recipient: Recipient, scopes: list[tuple[str, str]], period: str,
                 documents: list[dict]) -> str:
    """A short plain-English body: RAG counts and exceptions, only for contracts in the recipient's scopes."""
    contracts = _contracts_in_scope(session, scopes)
    ids = [c.id for c in contracts]
    judged = session.exec(select(Judgement).where(Judgement.period == period, Judgement.contract_id.in_(ids))).all()
    counts = {word: sum(j.rag == word for j in judged) for word in ("Green", "Amber", "Red")}
    lines = [f"Dear {recipient.name},", "",
             f"cjmonitor's documents for {period} are attached ({len(documents)} file{'s' if len(documents) != 1 else ''}).",
             f"Across the {len(contracts)} contract{'s' if len(contracts) != 1 else ''} you receive, the KPIs this month are: "
             f"{counts['Green']} Green, {counts['Amber']} Amber, {counts['Red']} Red.", ""]
    exceptions = [j for j in judged if j.rag == "Red" and j.verdict == "not met"]
    if exceptions:
        lines.append("Missed beyond sampling noise (Red, and the target is not met at the stated alpha):")
        for j in sorted(exceptions, key=lambda j: (j.contract_id, j.measure_code)):
            rate = "[c]" if j.denominator < SMALL_COUNT else f"{100 * j.value:.1f}%"
            lines.append(f"  - {j.contract_id}: {MEASURES_BY_CODE[j.measure_code].name}: {rate} against a target of "
                         f"{100 * j.target:.0f}%")
    else:
        lines.append("No KPI missed its target beyond sampling noise this month.")
    lines += ["", "Figures are judged with intervals; a Red month on its own can be noise. The attached documents give the "
              "working and the data behind every figure.", "", "cjmonitor"]
    return "\n".join(lines)


# ------------------------------------------------------------------ sending


def _message(smtp: SmtpSettings, recipient: Recipient, period: str, body: str, documents: list[dict]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = recipient.email
    message["Subject"] = f"cjmonitor: your documents for {period}"
    message.set_content(body)
    for document in documents:
        path = Path(document["path"])
        data = path.read_bytes()
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        label = f"{document['contract_id'] or document['area_code']}_{document['kind']}{path.suffix}"
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=label)
    return message


def _send(smtp: SmtpSettings, message: EmailMessage) -> str:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.user:
            client.login(smtp.user, smtp.password or "")
        refused = client.send_message(message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
        code, response = client.noop()
        return f"{code} {response.decode(errors='replace') if isinstance(response, bytes) else response}"


def _send_with_retries(smtp: SmtpSettings, message: EmailMessage) -> tuple[bool, int, str]:
    error = ""
    for attempt in range(1, smtp.retries + 1):
        try:
            return True, attempt, _send(smtp, message)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("send to %s failed (attempt %d of %d): %s", message["To"], attempt, smtp.retries, error)
            if attempt < smtp.retries:
                time.sleep(min(30.0, 2.0 ** (attempt - 1)))
    return False, smtp.retries, error


def _check_documents(documents: list[dict], scopes: list[tuple[str, str]]) -> str | None:
    for document in documents:
        if not in_scope(document, scopes):
            return f"{document['path']} is outside the recipient's scopes"
        path = Path(document["path"])
        if not path.is_file():
            return f"{document['path']} no longer exists"
        if hashlib.sha256(path.read_bytes()).hexdigest() != document["sha256"]:
            return f"{document['path']} changed since it was written (checksum differs)"
    return None


def distribute(settings: Settings, period: str, *, dry_run: bool = False, resend: bool = False,
               recipient_ids: list[int] | None = None, smtp: SmtpSettings | None = None) -> dict:
    """Send each recipient their period's documents (see the module docstring for the rules)."""
    smtp = smtp or SmtpSettings.from_env()
    if smtp is None and not dry_run:
        raise ConfigError("no SMTP server configured: set CJMONITOR_SMTP_HOST (and _PORT, _STARTTLS, _USER, "
                          "_PASSWORD, _FROM), or use --dry-run")
    deliveries = []
    with session_scope(settings) as session:
        documents = period_documents(session, period)
        if not documents:
            raise NotFoundError(f"no documents recorded for {period}: render them first (`cjmonitor run --period {period}`)")
        query = select(Recipient).where(Recipient.active).order_by(Recipient.email)
        if recipient_ids:
            query = query.where(Recipient.id.in_(recipient_ids))
        recipients = session.exec(query).all()
    for recipient in recipients:
        with session_scope(settings) as session:
            scopes = scopes_of(session, recipient.id)
            mine = [d for d in documents if in_scope(d, scopes)]
            entry = {"recipient": recipient.email, "scopes": [{"kind": k, "id": r} for k, r in scopes],
                     "documents": [{k: d[k] for k in ("path", "kind", "area_code", "contract_id", "provider_id")} for d in mine]}
            sent_before = session.exec(select(Delivery).where(Delivery.recipient_id == recipient.id,
                                                              Delivery.period == period,
                                                              Delivery.status == "sent")).first()
            if not mine:
                entry["status"] = "nothing to send"
            elif sent_before is not None and not resend:
                entry["status"] = "already sent"
            elif dry_run:
                entry["status"] = "would send"
            else:
                entry["status"] = _deliver(session, smtp, recipient, scopes, period, mine, resend)
        deliveries.append(entry)
    return {"period": period, "deliveries": deliveries}


def _deliver(session: Session, smtp: SmtpSettings, recipient: Recipient, scopes, period: str, documents: list[dict],
             resend: bool) -> str:
    now = datetime.now(UTC)
    key = now.strftime("%Y%m%dT%H%M%S%f") if resend else "first"
    delivery = session.exec(select(Delivery).where(Delivery.recipient_id == recipient.id, Delivery.period == period,
                                                   Delivery.attempt_key == key)).first()
    if delivery is None:
        delivery = Delivery(recipient_id=recipient.id, period=period, attempt_key=key, status="pending", created_at=now)
        session.add(delivery)
    delivery.documents = json.dumps([{"path": d["path"], "sha256": d["sha256"]} for d in documents])
    problem = _check_documents(documents, scopes)
    if problem:
        delivery.status, delivery.smtp_response = "refused", f"refused before sending: {problem}"
        log.error("delivery to %s for %s refused: %s", recipient.email, period, problem)
        return "refused"
    body = summary_text(session, recipient, scopes, period, documents)
    ok, attempts, response = _send_with_retries(smtp, _message(smtp, recipient, period, body, documents))
    delivery.attempts += attempts
    delivery.smtp_response = response
    delivery.status = "sent" if ok else "failed"
    delivery.sent_at = datetime.now(UTC) if ok else None
    if not ok:
        log.error("delivery to %s for %s failed after %d attempts: %s", recipient.email, period, attempts, response)
    return delivery.status


# ------------------------------------------------------------------ recipients


def add_recipient(session: Session, email: str, name: str, scopes: list[tuple[str, str]]) -> Recipient:
    for kind, ref in scopes:
        if kind not in SCOPE_KINDS:
            raise ConfigError(f"scope kind must be one of {', '.join(SCOPE_KINDS)}, got {kind!r}")
        model = {"area": Area, "contract": Contract, "provider": Provider}[kind]
        if session.get(model, ref) is None:
            raise NotFoundError(f"no {kind} {ref!r}")
    if "@" not in email:
        raise ConfigError(f"{email!r} is not an email address")
    recipient = session.exec(select(Recipient).where(Recipient.email == email)).first()
    if recipient is None:
        recipient = Recipient(email=email, name=name)
        session.add(recipient)
        session.flush()
    existing = set(scopes_of(session, recipient.id))
    for kind, ref in scopes:
        if (kind, ref) not in existing:
            session.add(RecipientScope(recipient_id=recipient.id, kind=kind, ref=ref))
    return recipient


def demo_recipients(session: Session) -> int:
    """A realistic set for the demo world: a commissioner's office per area, a contract manager per area
    covering its contracts, and a data contact per provider holding a contract. Addresses are on example.org (reserved)."""
    count = 0
    for area in session.exec(select(Area).order_by(Area.code)).all():
        slug = area.name.lower().replace(" and ", "-").replace(" ", "-")
        add_recipient(session, f"opcc@{slug}.example.org", f"Office of the commissioner, {area.name}", [("area", area.code)])
        contracts = session.exec(select(Contract).where(Contract.area_code == area.code).order_by(Contract.id)).all()
        add_recipient(session, f"contracts@{slug}.example.org", f"Contract management team, {area.name}",
                      [("contract", c.id) for c in contracts])
        count += 2
    for provider in session.exec(select(Provider).order_by(Provider.id)).all():
        if session.exec(select(Contract.id).where(Contract.provider_id == provider.id)).first() is None:
            continue  # no contract, so no scorecard to send (the LCJB only sends system measures)
        add_recipient(session, f"performance@{provider.id}.example.org", f"Performance team, {provider.name}",
                      [("provider", provider.id)])
        count += 1
    return count

"""Distribution through a real SMTP server on 127.0.0.1 (aiosmtpd): the right documents to the right people."""

from __future__ import annotations

import dataclasses
import email
import socket
import sqlite3

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlmodel import select

from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from cjmonitor.distribute import SmtpSettings, distribute
from cjmonitor.settings import get_settings
from contracts.models import Contract, Delivery, Provider, Recipient

PERIOD = "2025-12"


class Mailbox:
    """An SMTP handler that keeps every message, and can be told to refuse after a number of them."""

    def __init__(self):
        self.messages: list[email.message.Message] = []
        self.accept_at_most: int | None = None

    async def handle_DATA(self, server, session, envelope):
        if self.accept_at_most is not None and len(self.messages) >= self.accept_at_most:
            return "421 Service not available, closing transmission channel"
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK queued"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield mailbox, SmtpSettings(host="127.0.0.1", port=controller.port, sender="cjmonitor@example.org")
    controller.stop()


@pytest.fixture
def home(demo_home, tmp_path, monkeypatch):
    """A private copy of the demo database, so deliveries here do not leak into other tests."""
    copy = tmp_path / "cjmonitor.db"
    with sqlite3.connect(demo_home / "var" / "cjmonitor.db") as source, sqlite3.connect(copy) as target:
        source.backup(target)  # the live database is in WAL mode: copy it through SQLite, not the file
    monkeypatch.setattr("cjmonitor.distribute.time.sleep", lambda s: None)
    return dataclasses.replace(get_settings(demo_home), database_url=f"sqlite:///{copy}")


def _expected(settings) -> dict[str, set[str]]:
    """Each recipient's documents, worked out here from the scopes without the module's own helpers."""
    from contracts.models import Artifact, RecipientScope

    with session_scope(settings) as session:
        contracts = {c.id: c for c in session.exec(select(Contract)).all()}
        artifacts = session.exec(select(Artifact).where(Artifact.period == PERIOD,
                                                        Artifact.kind.in_(["scorecard", "evidence_pack", "monthly_report", "lcjb_pack"]))).all()
        expected = {}
        for recipient in session.exec(select(Recipient)).all():
            scopes = session.exec(select(RecipientScope).where(RecipientScope.recipient_id == recipient.id)).all()
            names = set()
            for artifact in artifacts:
                suffix = "." + artifact.path.rsplit(".", 1)[1]
                if artifact.kind in ("monthly_report", "lcjb_pack"):  # an area's documents: that area's commissioner only
                    if any(scope.kind == "area" and scope.ref == artifact.area_code for scope in scopes):
                        names.add(f"{artifact.area_code}_{artifact.kind}{suffix}")
                    continue
                contract = contracts[artifact.contract_id]
                for scope in scopes:
                    if ((scope.kind == "area" and contract.area_code == scope.ref)
                            or (scope.kind == "contract" and contract.id == scope.ref)
                            or (scope.kind == "provider" and contract.provider_id == scope.ref
                                and artifact.kind == "scorecard")):
                        names.add(f"{contract.id}_{artifact.kind}{suffix}")
            expected[recipient.email] = names
    return expected


def _attachments(message) -> dict[str, str]:
    return {part.get_filename(): part.get_payload(decode=True).decode("utf-8", "replace")
            for part in message.walk() if part.get_filename()}


def test_each_recipient_gets_exactly_their_documents_once(home, smtp):
    mailbox, server = smtp
    result = distribute(home, PERIOD, smtp=server)
    expected = _expected(home)
    assert {d["status"] for d in result["deliveries"]} == {"sent"}
    assert len(mailbox.messages) == len(expected) == len(result["deliveries"])
    with session_scope(home) as session:
        provider_names = {p.id: p.name for p in session.exec(select(Provider)).all()}
    for message in mailbox.messages:
        to = message["To"]
        attachments = _attachments(message)
        assert set(attachments) == expected[to], to
        body = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
        assert PERIOD in body and "Green" in body
        if to.startswith("performance@"):
            own = to.split("@")[1].removesuffix(".example.org")
            others = [name for pid, name in provider_names.items() if pid != own]
            text = body + "".join(attachments.values())
            assert provider_names[own] in text
            assert not any(name in text for name in others), f"{to} saw another provider"
    # A rerun sends nothing.
    again = distribute(home, PERIOD, smtp=server)
    assert {d["status"] for d in again["deliveries"]} == {"already sent"}
    assert len(mailbox.messages) == len(expected)
    with session_scope(home) as session:
        logged = session.exec(select(Delivery)).all()
    assert len(logged) == len(expected) and all(d.status == "sent" and d.smtp_response.startswith("250") for d in logged)


def test_outage_mid_run_is_reported_and_a_rerun_sends_only_the_rest(home, smtp):
    mailbox, server = smtp
    mailbox.accept_at_most = 4
    first = distribute(home, PERIOD, smtp=server)
    statuses = [d["status"] for d in first["deliveries"]]
    assert statuses.count("sent") == 4 and statuses.count("failed") == len(statuses) - 4
    with session_scope(home) as session:
        failed = session.exec(select(Delivery).where(Delivery.status == "failed")).all()
    assert all(d.attempts == 3 and "421" in d.smtp_response for d in failed)
    mailbox.accept_at_most = None
    second = distribute(home, PERIOD, smtp=server)
    assert [d["status"] for d in second["deliveries"]].count("sent") == len(statuses) - 4
    received = [m["To"] for m in mailbox.messages]
    assert sorted(received) == sorted(set(received)), "nobody receives the same period twice"
    assert len(received) == len(statuses)


def test_a_document_outside_the_scopes_is_refused_not_sent(home, smtp):
    """If selection ever let another provider's scorecard through, the send-time check refuses the delivery."""
    from cjmonitor import distribute as module

    mailbox, server = smtp
    with session_scope(home) as session:
        recipient = session.exec(select(Recipient).where(Recipient.email.startswith("performance@northstar"))).one()
        scopes = module.scopes_of(session, recipient.id)
        documents = module.period_documents(session, PERIOD)
        mine = [d for d in documents if module.in_scope(d, scopes)]
        foreign = next(d for d in documents if d["provider_id"] not in (None, "northstar-rehab"))
        status = module._deliver(session, server, recipient, scopes, PERIOD, [*mine, foreign], resend=False)
    assert status == "refused" and mailbox.messages == []
    with session_scope(home) as session:
        (logged,) = session.exec(select(Delivery)).all()
    assert logged.status == "refused" and "outside the recipient's scopes" in logged.smtp_response
    assert foreign["path"] in logged.smtp_response


def test_cli_dry_run_and_missing_smtp(home, demo_home, monkeypatch):
    monkeypatch.delenv("CJMONITOR_SMTP_HOST", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["distribute", "--home", str(demo_home), "--period", PERIOD, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    import json

    plan = json.loads(result.output)
    assert plan["period"] == PERIOD and {d["status"] for d in plan["deliveries"]} == {"would send"}
    assert all({"recipient", "scopes", "documents", "status"} <= set(d) for d in plan["deliveries"])
    missing = runner.invoke(cli, ["distribute", "--home", str(demo_home), "--period", PERIOD])
    assert missing.exit_code == 2 and "CJMONITOR_SMTP_HOST" in missing.output

"""Shared document code: writing a file whole (a temporary file renamed into place, so nothing is half-written),
recording it as an artifact, and the data-cut time every document prints."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, func
from sqlmodel import Session, select

from contracts.models import Artifact, Submission


def write_text(path: Path, text: str) -> str:
    """Write ``text`` (UTF-8) whole; returns its SHA-256."""
    return write_bytes(path, text.encode("utf-8"))[1]


def write_bytes(path: Path, data: bytes) -> tuple[Path, str]:
    """Write ``data`` whole; returns the path and its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_bytes(data)
    temporary.replace(path)
    return path, hashlib.sha256(data).hexdigest()


def data_cut_time(session: Session) -> datetime | None:
    """When the data a document shows were cut: the receipt time of the latest accepted return (None before any).
    Derived from the data, not the clock, so rendering the same data again writes the same bytes."""
    return session.exec(select(func.max(Submission.received_at)).where(Submission.status == "accepted")).one()


def format_cut(cut: datetime | None) -> str:
    return cut.strftime("%Y-%m-%d %H:%M UTC") if cut is not None else "no returns accepted yet"


def record_artifact(session: Session, *, kind: str, audience: str, period: str, path: Path, sha: str,
                    contract_id: str | None = None, area_code: str | None = None) -> None:
    """Record a written document (idempotent: the same document written again keeps its record and creation time)."""
    existing = session.exec(select(Artifact).where(Artifact.path == str(path))).all()
    same = (kind, audience, period, contract_id, area_code, sha)
    if len(existing) == 1 and (existing[0].kind, existing[0].audience, existing[0].period, existing[0].contract_id,
                               existing[0].area_code, existing[0].sha256) == same:
        return  # the same document written again: keep its record and first creation time (reruns change nothing)
    session.execute(delete(Artifact).where(Artifact.path == str(path)))
    session.add(Artifact(kind=kind, audience=audience, period=period, contract_id=contract_id, area_code=area_code,
                         path=str(path), sha256=sha, created_at=datetime.now(UTC)))

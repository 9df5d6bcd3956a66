"""Error reports for rejected returns: a CSV for the provider's data clerk and a readable HTML page."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from reports.env import environment


def safe_cell(value) -> str:
    """Neutralise text a spreadsheet would run as a formula (OWASP CSV injection): prefix it with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_error_report(out_dir: Path, *, file_name: str, provider_name: str, return_type: str, period: str,
                       submission_id: int, sha256: str, received_at: str, issues: list,
                       proposed_mapping: str | None = None) -> tuple[Path, Path]:
    """Write ``<file>.errors.csv`` and ``<file>.errors.html`` under ``out_dir/data-quality/<period>/``."""
    folder = out_dir / "data-quality" / period
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "severity", "row", "column", "code", "message"])
    for issue in issues:
        writer.writerow([safe_cell(v) for v in (file_name, issue.severity, "" if issue.row is None else issue.row,
                                                 issue.column or "", issue.code, issue.message)])
    csv_path = folder / f"{file_name}.errors.csv"
    csv_path.write_text(buffer.getvalue())
    match = re.match(r"^(.*?)(?:_v(\d+))?\.([A-Za-z]+)$", file_name)
    resend_name = f"{match.group(1)}_v{int(match.group(2) or 1) + 1}.{match.group(3)}" if match else file_name
    errors = sum(1 for i in issues if i.severity == "error")
    warnings = sum(1 for i in issues if i.severity == "warning")
    mapped = any(i.code == "read_through_mapping" for i in issues)
    html = environment().get_template("errors.html").render(
        file_name=file_name, provider_name=provider_name, return_type=return_type, period=period,
        submission_id=submission_id, sha256=sha256, received_at=received_at, issues=issues, errors=errors,
        warnings=warnings, resend_name=resend_name, proposed_mapping=proposed_mapping, mapped=mapped,
    )
    html_path = folder / f"{file_name}.errors.html"
    html_path.write_text(html)
    return csv_path, html_path

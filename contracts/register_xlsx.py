"""The register as a workbook, for contract managers who live in Excel: one sheet per section.

Sheets: ``office`` (name, area: one row per area), ``providers``, ``services`` (one declared service per
row, its definition as YAML text in ``definition``), ``contracts`` (with the payment terms at the start),
``kpis`` (contract x KPI terms at the start), ``variations`` (with any payment terms they restate),
``variation_kpis`` (the KPI terms each variation restates) and ``recipients`` (scopes comma-separated).
Reading gives the same plain data as the YAML, and every key remembers its sheet, row and column, so
the same validation names them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

from contracts.register import (
    PAYMENT_FIELDS,
    TERM_FIELDS,
    LoadedRegister,
    Locator,
    Problem,
    RegisterError,
)

CONTRACT_COLUMNS = ("id", "name", "area", "provider", "service", "framework", "start", "end", "annual_value_gbp",
                    "return_due_day", "closed_on", *PAYMENT_FIELDS)
SHEETS = {
    "office": ("name", "area"),
    "providers": ("id", "name", "kind", "return_mode", "mappings"),
    "services": ("id", "definition"),
    "contracts": CONTRACT_COLUMNS,
    "kpis": ("contract", "code", *TERM_FIELDS),
    "variations": ("contract", "date", "kind", "description", "kpi", *PAYMENT_FIELDS),
    "variation_kpis": ("contract", "date", "kind", "code", *TERM_FIELDS, "closed"),
    "recipients": ("email", "name", "scopes", "active"),
}
DATE_COLUMNS = {"start", "end", "closed_on", "date"}


def write_register_xlsx(data: dict, path: Path) -> Path:
    import yaml
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    rows: dict[str, list[list]] = {name: [] for name in SHEETS}
    office = data["office"]
    for index, code in enumerate(office["areas"]):
        rows["office"].append([office["name"] if index == 0 else None, code])
    for p in data.get("providers", []):
        rows["providers"].append([p["id"], p["name"], p.get("kind", "other"), p.get("return_mode", "person"),
                                  json.dumps(p["mappings"]) if p.get("mappings") else None])
    for s in data.get("services", []):
        rows["services"].append([s["id"], yaml.safe_dump(s, sort_keys=False)])
    for c in data.get("contracts", []):
        payment = c.get("payment", {})
        rows["contracts"].append([c.get(k) for k in CONTRACT_COLUMNS[:11]] + [payment.get(k) for k in PAYMENT_FIELDS])
        for k in c.get("kpis") or []:
            rows["kpis"].append([c["id"], k["code"], *(k.get(f) for f in TERM_FIELDS)])
        for v in c.get("variations", []):
            pay = v.get("payment") or {}
            rows["variations"].append([c["id"], v["date"], v.get("kind", "renegotiation"), v["description"], v.get("kpi"),
                                       *(pay.get(f) for f in PAYMENT_FIELDS)])
            for k in v.get("kpis", []):
                rows["variation_kpis"].append([c["id"], v["date"], v.get("kind", "renegotiation"), k["code"],
                                               *(k.get(f) for f in TERM_FIELDS), True if k.get("closed") else None])
    for r in data.get("recipients", []):
        rows["recipients"].append([r["email"], r["name"], ", ".join(r.get("scopes", [])),
                                   None if r.get("active", True) else False])
    for name, columns in SHEETS.items():
        sheet = book.create_sheet(name)
        sheet.append(list(columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows[name]:
            sheet.append(row)
        for col_index, column in enumerate(columns, start=1):
            if column in DATE_COLUMNS:
                for (cell,) in sheet.iter_rows(min_row=2, min_col=col_index, max_col=col_index):
                    cell.number_format = "yyyy-mm-dd"
        sheet.freeze_panes = "A2"
    fixed = datetime(2020, 1, 1)
    book.properties.created = fixed
    book.properties.modified = fixed
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def _value(value, column: str):
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
    if isinstance(value, datetime) and column in DATE_COLUMNS and value.time() == datetime.min.time():
        return value.date()
    if isinstance(value, float) and column == "return_due_day" and value.is_integer():
        return int(value)
    return value


def read_register_xlsx(path: Path) -> LoadedRegister:
    import yaml
    from openpyxl import load_workbook

    name = str(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a file that is not a workbook
        raise RegisterError([Problem(name, "(file)", f"not a readable .xlsx workbook ({exc.__class__.__name__}); "
                                     "save it from Excel as .xlsx")]) from None
    marks: dict[tuple, str] = {}
    problems: list[Problem] = []
    tables: dict[str, list[tuple[int, dict]]] = {}
    for sheet_name, columns in SHEETS.items():
        if sheet_name not in book.sheetnames:
            if sheet_name in ("office", "contracts"):
                problems.append(Problem(name, sheet_name, f"the workbook has no sheet {sheet_name!r}; "
                                        "start from `cjmonitor register export --xlsx`"))
            tables[sheet_name] = []
            continue
        sheet = book[sheet_name]
        iterator = sheet.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(iterator, ())]
        for heading in header:
            if heading and heading not in columns:
                problems.append(Problem(f"{name}, sheet {sheet_name}, row 1, column {heading}", sheet_name,
                                        f"unknown column {heading!r}; the columns of this sheet are: {', '.join(columns)}"))
        table = []
        for row_number, values in enumerate(iterator, start=2):
            record = {h: _value(v, h) for h, v in zip(header, values, strict=False) if h in columns}
            record = {k: v for k, v in record.items() if v is not None}
            if record:
                table.append((row_number, record))
        tables[sheet_name] = table
    book.close()
    if problems:
        raise RegisterError(problems)

    def mark(path: tuple, sheet: str, row: int, column: str | None = None) -> None:
        marks[path] = f"sheet {sheet}, row {row}" + (f", column {column}" if column else "")

    data: dict = {"office": {}, "providers": [], "services": [], "contracts": [], "recipients": []}
    areas = []
    for row, record in tables["office"]:
        if "name" in record and "name" not in data["office"]:
            data["office"]["name"] = str(record["name"])
            mark(("office", "name"), "office", row, "name")
        if "area" in record:
            mark(("office", "areas", len(areas)), "office", row, "area")
            areas.append(str(record["area"]))
    data["office"]["areas"] = areas
    mark(("office",), "office", 2)
    for index, (row, record) in enumerate(tables["providers"]):
        for column in record:
            mark(("providers", index, column), "providers", row, column)
        mark(("providers", index), "providers", row)
        if "mappings" in record:
            try:
                record["mappings"] = json.loads(record["mappings"])
            except (TypeError, json.JSONDecodeError):
                problems.append(Problem(f"{name}, sheet providers, row {row}, column mappings", f"providers[{index}].mappings",
                                        "not valid JSON: write the mappings as a JSON list, or leave the cell empty"))
        data["providers"].append(record)
    for index, (row, record) in enumerate(tables["services"]):
        mark(("services", index), "services", row, "definition")
        try:
            service = yaml.safe_load(record.get("definition", "")) or {}
        except yaml.YAMLError:
            problems.append(Problem(f"{name}, sheet services, row {row}, column definition", f"services[{index}]",
                                    "the definition is not valid YAML"))
            continue
        data["services"].append(service)
    contracts: dict[str, dict] = {}
    contract_index: dict[str, int] = {}
    for index, (row, record) in enumerate(tables["contracts"]):
        contract = {k: v for k, v in record.items() if k not in PAYMENT_FIELDS}
        contract["payment"] = {k: v for k, v in record.items() if k in PAYMENT_FIELDS}
        for column in record:
            key = ("contracts", index, "payment", column) if column in PAYMENT_FIELDS else ("contracts", index, column)
            mark(key, "contracts", row, column)
        mark(("contracts", index), "contracts", row)
        contract["kpis"] = []
        contract["variations"] = []
        data["contracts"].append(contract)
        if "id" in contract:
            contracts[str(contract["id"])] = contract
            contract_index[str(contract["id"])] = index

    def owner(sheet: str, row: int, record: dict):
        contract_id = record.pop("contract", None)
        if contract_id is None or str(contract_id) not in contracts:
            problems.append(Problem(f"{name}, sheet {sheet}, row {row}, column contract", sheet,
                                    f"no contract {contract_id!r} on the contracts sheet: correct the id or add the contract"))
            return None, None
        return contracts[str(contract_id)], contract_index[str(contract_id)]

    for row, record in tables["kpis"]:
        contract, c_index = owner("kpis", row, record)
        if contract is None:
            continue
        k_index = len(contract["kpis"])
        for column in record:
            mark(("contracts", c_index, "kpis", k_index, column), "kpis", row, column)
        mark(("contracts", c_index, "kpis", k_index), "kpis", row)
        contract["kpis"].append(record)
    by_variation: dict[tuple, dict] = {}
    for row, record in tables["variations"]:
        contract, c_index = owner("variations", row, record)
        if contract is None:
            continue
        v_index = len(contract["variations"])
        variation = {k: v for k, v in record.items() if k not in PAYMENT_FIELDS}
        payment = {k: v for k, v in record.items() if k in PAYMENT_FIELDS}
        if payment:
            variation["payment"] = payment
        for column in record:
            key = ("contracts", c_index, "variations", v_index, "payment", column) if column in PAYMENT_FIELDS \
                else ("contracts", c_index, "variations", v_index, column)
            mark(key, "variations", row, column)
        mark(("contracts", c_index, "variations", v_index), "variations", row)
        contract["variations"].append(variation)
        by_variation[(contract["id"], record.get("date"), record.get("kind", "renegotiation"))] = (variation, c_index, v_index)
    for row, record in tables["variation_kpis"]:
        contract, c_index = owner("variation_kpis", row, record)
        if contract is None:
            continue
        key = (contract["id"], record.pop("date", None), record.pop("kind", "renegotiation"))
        if key not in by_variation:
            problems.append(Problem(f"{name}, sheet variation_kpis, row {row}, column date", "variation_kpis",
                                    f"no variation of {key[0]} on {key[1]} ({key[2]}) on the variations sheet: add it there"))
            continue
        variation, c_index, v_index = by_variation[key]
        variation.setdefault("kpis", [])
        k_index = len(variation["kpis"])
        for column in record:
            mark(("contracts", c_index, "variations", v_index, "kpis", k_index, column), "variation_kpis", row, column)
        mark(("contracts", c_index, "variations", v_index, "kpis", k_index), "variation_kpis", row)
        variation["kpis"].append(record)
    for index, (row, record) in enumerate(tables["recipients"]):
        if "scopes" in record:
            record["scopes"] = [s.strip() for s in str(record["scopes"]).split(",") if s.strip()]
        for column in record:
            mark(("recipients", index, column), "recipients", row, column)
        mark(("recipients", index), "recipients", row)
        data["recipients"].append(record)
    if problems:
        raise RegisterError(problems)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return LoadedRegister(data, Locator(name, marks, "xlsx"), name, digest)


__all__ = ["write_register_xlsx", "read_register_xlsx", "SHEETS"]

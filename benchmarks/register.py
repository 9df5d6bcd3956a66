"""Benchmark: apply a register of 42 areas and 400 contracts (issue #15: under 5 s).

The register: the 42 areas, 20 providers, 400 contracts (100 each of crc, ttg, em, health, with every KPI of
their framework: 3,100 targets), a renegotiation restating one KPI on every tenth contract, and 126
recipients. Timed, each on a fresh SQLite database at the latest migration:

* ``check``: read the YAML (with line marks) and validate it, nothing written;
* ``apply``: check plus apply in one transaction (the whole of ``cjmonitor register apply``, less start-up);
* ``reapply``: apply the same file again (nothing changes: the diff is empty);
* ``export``: the database back to a register, and ``export_apply``: applying that export (no changes).

Baseline, in the same run: inserting the same contract, target, payment-terms and variation rows with one
SQLAlchemy Core ``insert`` per table (no reading, no validation, no diff). Figures go to
``benchmarks/results/register.json``.

    .venv/bin/python benchmarks/register.py [--contracts 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "register.json"
TARGET_SECONDS = 5.0


def make_register(n_contracts: int) -> dict:
    from contracts.catalogue import DEFAULT_FRAMEWORK, SERVICE_TYPES, framework_kpis
    from contracts.geography import AREAS

    providers = [{"id": f"provider-{i:02d}", "name": f"Provider {i:02d} Ltd", "kind": "private"} for i in range(20)]
    contracts = []
    for i in range(n_contracts):
        service = SERVICE_TYPES[i % 4]
        area = AREAS[(i // 4) % len(AREAS)]
        kpis = [{"code": k.code, "target": k.measure.default_target, "tolerance": k.measure.default_tolerance}
                for k in framework_kpis(DEFAULT_FRAMEWORK[service], service)]
        variations = []
        if i % 10 == 0:
            variations.append({"date": date(2024, 4, 1), "kind": "renegotiation", "description": "Target restated",
                               "kpis": [{"code": kpis[0]["code"], "target": round(kpis[0]["target"] - 0.05, 2)}]})
        contracts.append({"id": f"C{i:04d}-{service.upper()}", "name": f"{service} contract {i}", "area": area.code,
                          "provider": providers[i % 20]["id"], "service": service, "start": date(2023, 4, 1),
                          "end": date(2028, 3, 31), "annual_value_gbp": 1_000_000 + i, "kpis": kpis,
                          "payment": {"service_credit_cap_pct": 10}, "variations": variations})
    recipients = [{"email": f"opcc@{a.code.lower()}.example.org", "name": f"Office, {a.name}", "scopes": [f"area:{a.code}"]}
                  for a in AREAS]
    recipients += [{"email": f"contracts@{a.code.lower()}.example.org", "name": f"Contracts, {a.name}",
                    "scopes": sorted(f"contract:{c['id']}" for c in contracts if c["area"] == a.code)} for a in AREAS]
    recipients += [{"email": f"data@{p['id']}.example.org", "name": p["name"], "scopes": [f"provider:{p['id']}"]}
                   for p in providers] * 1
    recipients += [{"email": f"analyst{i}@office.example.org", "name": f"Analyst {i}", "scopes": [f"area:{AREAS[i].code}"]}
                   for i in range(22)]
    return {"office": {"name": "Benchmark office", "areas": [a.code for a in AREAS]}, "providers": providers,
            "services": [], "contracts": contracts, "recipients": recipients}


def fresh(folder: Path, name: str):
    from cjmonitor import pipeline
    from cjmonitor.settings import get_settings

    home = folder / name
    settings = get_settings(home)
    pipeline.upgrade_db(settings)
    return settings


def baseline(settings, data: dict) -> float:
    """The same rows inserted with one Core insert per table: no reading, no checks, no diff."""
    from sqlalchemy import insert

    from cjmonitor.db import session_scope
    from contracts.catalogue import MEASURES_BY_CODE
    from contracts.geography import AREAS_BY_CODE
    from contracts.models import Area, Contract, ContractVariation, Measure, PaymentTerms, Provider, Target

    started = time.perf_counter()
    with session_scope(settings) as session:
        session.execute(insert(Measure), [{"code": m.code, "service_type": m.service_type, "name": m.name,
                                           "definition": m.definition, "numerator": m.numerator,
                                           "denominator": m.denominator, "direction": m.direction, "unit": m.unit,
                                           "sql_name": m.sql_name} for m in MEASURES_BY_CODE.values()])
        session.execute(insert(Area), [{"code": c, "name": AREAS_BY_CODE[c].name, "region": AREAS_BY_CODE[c].region,
                                        "commissioner_type": "PCC", "population_m": 1.0} for c in data["office"]["areas"]])
        session.execute(insert(Provider), [{"id": p["id"], "name": p["name"], "kind": p["kind"], "return_mode": "person"}
                                           for p in data["providers"]])
        session.execute(insert(Contract), [{"id": c["id"], "area_code": c["area"], "provider_id": c["provider"],
                                            "service_type": c["service"], "name": c["name"], "start_date": c["start"],
                                            "end_date": c["end"], "annual_value_gbp": c["annual_value_gbp"],
                                            "return_due_day": 15} for c in data["contracts"]])
        session.execute(insert(Target), [{"contract_id": c["id"], "measure_code": k["code"], "valid_from": c["start"],
                                          "value": k["target"], "tolerance": k["tolerance"], "min_volume": 20,
                                          "service_credit_pct": 0.0} for c in data["contracts"] for k in c["kpis"]])
        session.execute(insert(PaymentTerms), [{"contract_id": c["id"], "valid_from": c["start"]} for c in data["contracts"]])
        session.execute(insert(ContractVariation), [{"contract_id": c["id"], "effective_date": v["date"], "kind": v["kind"],
                                                     "description": v["description"]}
                                                    for c in data["contracts"] for v in c["variations"]])
    return time.perf_counter() - started


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from cjmonitor import pipeline
    from cjmonitor.db import session_scope
    from contracts.models import Target
    from contracts.register import check_file, to_yaml

    data = make_register(args.contracts)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "register.yaml"
        path.write_text(to_yaml(data))
        check_file(path)  # warm the imports once, outside the timings
        for run in range(args.repeat):
            settings = fresh(folder, f"apply{run}")
            base_settings = fresh(folder, f"baseline{run}")
            check_s, _ = timed(lambda: check_file(path))
            apply_s, first = timed(lambda s=settings: pipeline.apply_register_file(s, path, effective=date(2026, 1, 1)))
            reapply_s, again = timed(lambda s=settings: pipeline.apply_register_file(s, path, effective=date(2026, 1, 1)))
            export_s, exported = timed(lambda s=settings: pipeline.export_register_data(s))
            export_path = folder / f"export{run}.yaml"
            export_path.write_text(to_yaml(exported))
            export_apply_s, third = timed(lambda s=settings, e=export_path: pipeline.apply_register_file(
                s, e, effective=date(2026, 1, 1)))
            assert (again["added"], again["changed"], again["closed"]) == (0, 0, 0)
            assert (third["added"], third["changed"], third["closed"]) == (0, 0, 0)
            with session_scope(settings) as session:
                targets = len(session.exec(Target.__table__.select()).all())
            runs.append({"check_s": check_s, "apply_s": apply_s, "reapply_s": reapply_s, "export_s": export_s,
                         "export_apply_s": export_apply_s, "baseline_insert_s": baseline(base_settings, data),
                         "added": first["added"], "targets": targets})
    best = {key: min(r[key] for r in runs) for key in runs[0] if key.endswith("_s")}
    result = {
        "benchmark": f"register apply: 42 areas, {args.contracts} contracts",
        "areas": len(data["office"]["areas"]), "contracts": args.contracts, "providers": len(data["providers"]),
        "recipients": len(data["recipients"]), "targets": runs[0]["targets"],
        "variations": sum(len(c["variations"]) for c in data["contracts"]),
        "register_bytes": len(to_yaml(data).encode()),
        "best_of": args.repeat, "seconds": {k: round(v, 3) for k, v in best.items()},
        "ratio_apply_to_baseline_insert": round(best["apply_s"] / best["baseline_insert_s"], 1),
        "target_seconds": TARGET_SECONDS, "meets_target": best["apply_s"] < TARGET_SECONDS,
        "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
        "python": platform.python_version(), "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["seconds"], indent=2))
    print(f"apply {best['apply_s']:.2f} s (target < {TARGET_SECONDS} s), {result['ratio_apply_to_baseline_insert']}x "
          f"a bare insert of the same rows; written to {RESULTS}")


if __name__ == "__main__":
    main()

"""Benchmark: validate, pseudonymise and load a 1,000,000-row ttg_resettlement return.

Three phases on the same file, each in its own process so that its peak RSS is its own:

- ``baseline``: a plain ``pandas.read_csv`` + ``DataFrame.to_sql`` into SQLite (no checks, no
  pseudonymisation, no derived columns, no indexes or foreign keys);
- ``sqlite``: cjmonitor's ``ingest_file`` into a migrated SQLite home (archive, every check, keyed hash,
  derived columns, one transaction with the submission row; SQLite's prepared ``executemany``);
- ``postgres``: the same into PostgreSQL, loaded by COPY in the same transaction (only when a server is
  reachable: ``--postgres-url``, or ``CJMONITOR_TEST_POSTGRES_URL`` as ``scripts/with-postgres.sh`` exports it).

Each run times the three phases one after the other and works out the ratios within the run, so that the
load of a shared machine weighs on both sides of a ratio. ``--runs`` repeats the whole run (default 2); every
run is kept. Targets (issue 20): the SQLite ingest in at most 1.5x the baseline, the PostgreSQL ingest faster
than the SQLite one, every phase under 1 GB peak RSS. The file's episode references and person identifiers
are all distinct, so the keyed hash is paid for every row (the worst case for hashing each distinct
identifier once). Figures go to ``benchmarks/results/ingest.json``.

    scripts/with-postgres.sh .venv/bin/python benchmarks/ingest.py [--rows 1000000] [--runs 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"
NAME = "gateway-resettlement_ttg_resettlement_2023-02.csv"
TARGET_RATIO = 1.5
TARGET_RSS_MB = 1024


def make_file(folder: Path, rows: int) -> Path:
    import pandas as pd

    from cjmonitor.demo import generate_world

    generate_world(folder / "world", folder / "truth.json", seed=1, areas=5, months=24)
    template = pd.read_csv(folder / "world" / NAME, dtype=str, keep_default_na=False)
    copies = -(-rows // len(template))
    big = pd.concat([template] * copies, ignore_index=True).iloc[:rows].copy()
    big["episode_ref"] = [f"T{i:09d}" for i in range(rows)]
    big["person_id"] = [f"P{i:09d}" for i in range(rows)]
    path = folder / NAME
    big.to_csv(path, index=False, lineterminator="\n")
    return path


def phase_baseline(path: Path, target: str) -> dict:
    import pandas as pd
    from sqlalchemy import create_engine

    started, cpu = time.perf_counter(), time.process_time()
    frame = pd.read_csv(path)
    frame.to_sql("ttg", create_engine(f"sqlite:///{target}"), index=False, chunksize=50_000)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu, "rows": len(frame)}


def _ingest(settings, path: Path) -> dict:
    from cjmonitor import pipeline
    from cjmonitor.db import session_scope
    from cjmonitor.demo import build_world, load_world
    from contracts import ingest

    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=1, areas=5, months=24))
    settings.ensure_dirs()
    key = settings.pseudonymisation_key()
    methods = []
    load_records = ingest.load_records

    def recorded(*args, **kwargs):
        methods.append(load_records(*args, **kwargs))
        return methods[-1]

    ingest.load_records = recorded
    started, cpu = time.perf_counter(), time.process_time()
    with session_scope(settings) as session:
        outcome = ingest.ingest_file(session, path, archive_dir=settings.raw_archive_dir, key=key, source="bench",
                                     max_bytes=2 * 1024**3)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if outcome.status != "accepted":
        raise SystemExit(f"benchmark file was not accepted: {outcome.message} {outcome.issues[:3]}")
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": outcome.rows, "load": methods[0]}


def phase_sqlite(path: Path, target: str) -> dict:
    from cjmonitor.settings import get_settings

    return _ingest(get_settings(Path(target)), path)


def phase_postgres(path: Path, target: str) -> dict:
    from sqlalchemy import create_engine, text

    from cjmonitor.settings import get_settings

    home, url = target.split("|", 1)
    name = f"cj_bench_ingest_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        settings = dataclasses.replace(get_settings(Path(home)), database_url=url.rsplit("/", 1)[0] + "/" + name)
        figures = _ingest(settings, path)
        figures.update(_server_copy(settings.database_url))
        return figures
    finally:
        from cjmonitor.db import dispose_engines

        dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _server_copy(url: str) -> dict:
    """The server's share: the stored records copied out as COPY text, then timed back in by COPY alone (no
    reading, checks or conversion in Python), with the table's foreign keys and without them; both in
    transactions that are rolled back."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        columns = [r[0] for r in connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'ttg_record' AND column_name <> 'id' "
            "ORDER BY ordinal_position").fetchall()]
        listed = ", ".join(columns)
        payload = bytearray()
        with connection.cursor().copy(f"COPY (SELECT {listed} FROM ttg_record) TO STDOUT") as copy:
            for block in copy:
                payload += block
        keys = [r[0] for r in connection.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'ttg_record'::regclass AND contype = 'f'").fetchall()]
        connection.commit()
        figures = {}
        for label, drop in (("with_foreign_keys", []), ("without_foreign_keys", keys)):
            with connection.transaction(force_rollback=True):
                for key in drop:
                    connection.execute(f'ALTER TABLE ttg_record DROP CONSTRAINT "{key}"')
                connection.execute("TRUNCATE ttg_record")  # an empty table, as the ingest found it (rolled back)
                started = time.perf_counter()
                with connection.cursor().copy(f"COPY ttg_record ({listed}) FROM STDIN") as copy:
                    for start in range(0, len(payload), 1 << 20):
                        copy.write(payload[start:start + (1 << 20)])
                figures[f"server_copy_seconds_{label}"] = time.perf_counter() - started
    return figures


PHASES = {"baseline": phase_baseline, "sqlite": phase_sqlite, "postgres": phase_postgres}


def _child(phase: str, path: Path, target: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--phase", phase, "--file", str(path), "--target", target],
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"phase {phase} failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def one_run(path: Path, folder: Path, number: int, postgres_url: str | None) -> dict:
    run: dict = {"run": number, "load_average_before": _load_average()}
    run["baseline_read_csv_to_sql"] = _child("baseline", path, str(folder / f"baseline-{number}.db"))
    run["cjmonitor_sqlite"] = _child("sqlite", path, str(folder / f"home-sqlite-{number}"))
    if postgres_url:
        run["cjmonitor_postgres_copy"] = _child("postgres", path, f"{folder / f'home-pg-{number}'}|{postgres_url}")
    run["load_average_after"] = _load_average()
    base = run["baseline_read_csv_to_sql"]["seconds"]
    sqlite = run["cjmonitor_sqlite"]
    run["sqlite_ratio_to_baseline"] = round(sqlite["seconds"] / base, 2)
    run["sqlite_cpu_ratio_to_baseline"] = round(sqlite["cpu_seconds"] / run["baseline_read_csv_to_sql"]["cpu_seconds"], 2)
    run["sqlite_rows_per_second"] = round(sqlite["rows"] / sqlite["seconds"])
    met = {"sqlite_ratio": run["sqlite_ratio_to_baseline"] <= TARGET_RATIO,
           "sqlite_peak_rss": sqlite["peak_rss_mb"] < TARGET_RSS_MB}
    if postgres_url:
        postgres = run["cjmonitor_postgres_copy"]
        run["postgres_ratio_to_baseline"] = round(postgres["seconds"] / base, 2)
        run["postgres_to_sqlite"] = round(postgres["seconds"] / sqlite["seconds"], 2)
        run["postgres_rows_per_second"] = round(postgres["rows"] / postgres["seconds"])
        met["postgres_faster_than_sqlite"] = postgres["seconds"] < sqlite["seconds"]
        met["postgres_peak_rss"] = postgres["peak_rss_mb"] < TARGET_RSS_MB
    run["meets_targets"] = met
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--postgres-url", default=os.environ.get("CJMONITOR_TEST_POSTGRES_URL"))
    parser.add_argument("--no-write", action="store_true", help="print the figures without writing the results file")
    parser.add_argument("--phase", choices=sorted(PHASES))
    parser.add_argument("--file", type=Path)
    parser.add_argument("--target")
    args = parser.parse_args()
    if args.phase:
        figures = PHASES[args.phase](args.file, args.target)
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = make_file(folder, args.rows)
        size_mb = path.stat().st_size / 1e6
        runs = []
        for number in range(1, args.runs + 1):
            runs.append(one_run(path, folder, number, args.postgres_url))
            print(json.dumps(runs[-1], indent=2), flush=True)
    result = {
        "benchmark": "validate + pseudonymise + load one ttg_resettlement return (SQLite; PostgreSQL by COPY)",
        "rows": args.rows,
        "file_mb": round(size_mb, 1),
        "note": ("each run times the baseline and cjmonitor one after the other on the same file; the ratios are "
                 "within a run, so the load of the shared machine (2 cores; see load_average_*) weighs on both sides. "
                 "cpu_seconds: the phase process's own CPU time over the same span (less sensitive to the load; "
                 "the PostgreSQL server's CPU is not in it). peak_rss_mb is each phase's own process (the PostgreSQL server's memory is not in it). "
                 "server_copy_seconds_*: the same rows COPYed in again with nothing else done, with the record "
                 "table's foreign keys and without them (rolled back): the server's share of the PostgreSQL ingest."),
        "targets": {"sqlite_ratio_to_baseline_at_most": TARGET_RATIO, "postgres": "faster than the SQLite ingest",
                    "peak_rss_mb_under": TARGET_RSS_MB},
        "runs": runs,
        "meets_targets_in_every_run": {key: all(run["meets_targets"].get(key, False) for run in runs)
                                       for key in runs[0]["meets_targets"]},
        "postgres": "measured" if args.postgres_url else "not measured: no PostgreSQL URL (run under scripts/with-postgres.sh)",
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "cores": os.cpu_count()},
    }
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("rows", "meets_targets_in_every_run")}, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: the monthly run for a national world (42 areas, ~170 contracts, 36 months) through Airflow.

Setup (timed, not compared): generate the world, load the first 35 months of returns, so the home looks as
it does the day the last month's returns arrive; then put the last month's returns in the drop folder.

Measured, each on its own copy of that home and in its own process:

* ``airflow``: ``cjmonitor_monthly`` through Airflow's test runner (``dag.test()``, SQLite metadata in a
  throwaway AIRFLOW_HOME): ingest of the month (mapped per provider), derive, judge, analyse, scorecards
  (mapped per contract), monthly area reports with PDFs (mapped per area), index. Wall time per stage is
  read from the dag run's task instances (mapped stages: the sum and the slowest instance).
* ``baseline``: the same ``cjmonitor.pipeline`` steps called directly in one process, without Airflow.

The ratio airflow / baseline is the cost of running under Airflow. With ``--postgres-url`` (or
CJMONITOR_TEST_POSTGRES_URL) the application database of both runs is on PostgreSQL as well. Target:
the whole monthly run under 10 minutes on a 2-core machine. Figures go to
``benchmarks/results/national.json`` (``national-postgres.json`` on PostgreSQL).

    .venv/bin/python benchmarks/national.py [--areas 42 --months 36 --seed 20231 --scale 1.0]
        [--postgres-url postgresql+psycopg://user@127.0.0.1:5432/postgres]

``--scale`` multiplies every caseload (scale 1 is the demo world: 30 probation starts per million
population a month; about 10 approaches the real national probation caseload).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
TARGET_SECONDS = 600
STAGES = ["list_providers", "ingest_provider", "derive_kpis", "judge_kpis", "analyse_outcomes", "list_areas",
          "render_area", "render_index"]


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ------------------------------------------------------------------ phases (each in its own process)


def phase_setup(home: Path, args) -> dict:
    """Generate the world into a staging folder, load every month but the last, stage the last month."""
    from cjmonitor import pipeline
    from cjmonitor.demo import generate_world, load_world
    from cjmonitor.settings import get_settings
    from contracts.returns import parse_file_name

    settings = get_settings(home)
    staging = home / "staging"
    started = time.perf_counter()
    pipeline.upgrade_db(settings)
    world = generate_world(staging, settings.truth_path, seed=args.seed, areas=args.areas, months=args.months,
                           scale=args.scale)
    load_world(settings, world)
    generated = time.perf_counter() - started
    last = world.period(args.months - 1)
    files = sorted(p for p in staging.iterdir() if p.is_file())
    history = [p for p in files if (parsed := parse_file_name(p.name)) is None or parsed.period != last]
    current = [p for p in files if p not in history]
    started = time.perf_counter()
    loaded = pipeline.ingest(settings, paths=history)
    history_seconds = time.perf_counter() - started
    settings.drop_dir.mkdir(parents=True, exist_ok=True)
    for path in current:
        shutil.copy2(path, settings.drop_dir / path.name)
    shutil.rmtree(staging)
    return {"period": last, "areas": len(world.areas), "contracts": len(world.contracts),
            "providers": len(world.providers), "files_total": len(files), "files_this_month": len(current),
            "history_accepted": loaded.accepted, "generate_seconds": round(generated, 1),
            "load_history_seconds": round(history_seconds, 1), "peak_rss_mb": _peak_rss_mb()}


def phase_baseline(home: Path, period: str) -> dict:
    """The monthly run's steps called directly, one after another, without Airflow."""
    from cjmonitor import pipeline
    from cjmonitor.settings import get_settings

    settings = get_settings(home)
    stages: dict[str, float] = {}

    def timed(stage: str, work):
        started = time.perf_counter()
        result = work()
        stages[stage] = round(stages.get(stage, 0.0) + time.perf_counter() - started, 2)
        return result

    started = time.perf_counter()
    accepted = 0
    for provider_id in timed("list_providers", lambda: pipeline.provider_ids(settings)):
        accepted += timed("ingest_provider", lambda p=provider_id: pipeline.ingest(settings, p)).accepted
    timed("derive_kpis", lambda: pipeline.derive(settings))
    timed("judge_kpis", lambda: pipeline.judge(settings))
    timed("analyse_outcomes", lambda: pipeline.analyse(settings))
    for area_code in timed("list_areas", lambda: pipeline.area_codes(settings)):
        timed("render_area", lambda a=area_code: pipeline.render_area(settings, a, period, echo=lambda _line: None))
    timed("render_index", lambda: pipeline.render_index_only(settings, period))
    return {"seconds": round(time.perf_counter() - started, 1), "stages": stages, "accepted_this_month": accepted,
            "peak_rss_mb": _peak_rss_mb()}


def phase_airflow(home: Path, period: str) -> dict:
    """``cjmonitor_monthly`` through ``dag.test()``; per-stage wall times from the run's task instances."""
    from airflow.dag_processing.dagbag import DagBag

    # Import what the tasks import first, as the baseline does: both runs are then timed warm.
    from cjmonitor import pipeline  # noqa: F401

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["cjmonitor_monthly"]
    started = time.perf_counter()
    run = dag.test(run_conf={"period": period})
    seconds = time.perf_counter() - started
    stages: dict[str, dict] = {}
    states: dict[str, int] = {}
    for ti in run.get_task_instances():
        states[str(ti.state)] = states.get(str(ti.state), 0) + 1
        duration = ti.duration or ((ti.end_date - ti.start_date).total_seconds() if ti.end_date and ti.start_date else 0)
        entry = stages.setdefault(ti.task_id, {"instances": 0, "seconds": 0.0, "slowest": 0.0})
        entry["instances"] += 1
        entry["seconds"] = round(entry["seconds"] + duration, 2)
        entry["slowest"] = round(max(entry["slowest"], duration), 2)
    return {"seconds": round(seconds, 1), "state": str(run.state), "task_states": states, "stages": stages,
            "peak_rss_mb": _peak_rss_mb()}


# ------------------------------------------------------------------ driver


def _child(phase: str, home: Path, env: dict, **extra) -> dict:
    command = [sys.executable, __file__, "--phase", phase, "--home", str(home)]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _copy_database(postgres_url: str | None, source: str, target: str) -> None:
    """A copy of the loaded application database for each measured run."""
    if postgres_url:
        from sqlalchemy import create_engine, text

        admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{source}"'))
        admin.dispose()


def _drop_databases(postgres_url: str, names: list[str]) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", type=int, default=42)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=20231)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--postgres-url", default=os.environ.get("CJMONITOR_TEST_POSTGRES_URL"))
    parser.add_argument("--phase", choices=["setup", "baseline", "airflow"])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--period")
    args = parser.parse_args()
    if args.phase == "setup":
        print(json.dumps(phase_setup(args.home, args)))
        return
    if args.phase:
        print(json.dumps((phase_baseline if args.phase == "baseline" else phase_airflow)(args.home, args.period)))
        return

    load_before = os.getloadavg()
    database = "postgresql" if args.postgres_url else "sqlite"
    names = {k: f"cj_bench_{k}_{uuid.uuid4().hex[:6]}" for k in ("setup", "baseline", "airflow")}
    base_url = args.postgres_url.rsplit("/", 1)[0] if args.postgres_url else None
    if args.postgres_url:
        from sqlalchemy import create_engine, text

        admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{names["setup"]}"'))
        admin.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CJMONITOR_SMTP", "CJMONITOR_DATABASE_URL"))}
    try:
        with tempfile.TemporaryDirectory(prefix="cjmonitor-national-") as tmp:
            folder = Path(tmp)
            setup_env = dict(env)
            if base_url:
                setup_env["CJMONITOR_DATABASE_URL"] = f"{base_url}/{names['setup']}"
            setup = _child("setup", folder / "setup", setup_env, areas=args.areas, months=args.months,
                           seed=args.seed, scale=args.scale)
            print(f"setup: {json.dumps(setup)}", file=sys.stderr)
            runs = {}
            for kind in ("baseline", "airflow"):
                home = folder / kind
                shutil.copytree(folder / "setup", home)
                run_env = dict(env)
                if base_url:
                    _copy_database(args.postgres_url, names["setup"], names[kind])
                    run_env["CJMONITOR_DATABASE_URL"] = f"{base_url}/{names[kind]}"
                if kind == "airflow":
                    run_env.update({"AIRFLOW_HOME": str(folder / "airflow-home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                                    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "CJMONITOR_HOME": str(home)})
                    started = time.perf_counter()
                    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=run_env,
                                             capture_output=True, text=True)
                    if migrate.returncode != 0:
                        raise SystemExit(migrate.stderr[-3000:])
                    run_env["_MIGRATE_SECONDS"] = f"{time.perf_counter() - started:.1f}"
                runs[kind] = _child(kind, home, run_env, period=setup["period"])
                if kind == "airflow":
                    runs[kind]["airflow_db_migrate_seconds"] = float(run_env["_MIGRATE_SECONDS"])
                print(f"{kind}: {runs[kind]['seconds']} s", file=sys.stderr)
    finally:
        if args.postgres_url:
            _drop_databases(args.postgres_url, list(names.values()))

    airflow, baseline = runs["airflow"], runs["baseline"]
    per_stage = {}
    for stage in STAGES:
        ours = airflow["stages"].get(stage, {})
        direct = baseline["stages"].get(stage)
        per_stage[stage] = {"airflow_seconds": ours.get("seconds"), "airflow_instances": ours.get("instances"),
                            "airflow_slowest_instance": ours.get("slowest"), "direct_seconds": direct,
                            "ratio": round(ours["seconds"] / direct, 2) if ours and direct else None}
    result = {
        "benchmark": "cjmonitor_monthly for a national world through Airflow's dag.test() vs the same steps called directly",
        "database": database,
        "world": {"areas": setup["areas"], "contracts": setup["contracts"], "providers": setup["providers"],
                  "months": args.months, "seed": args.seed, "scale": args.scale, "period": setup["period"],
                  "return_files": setup["files_total"], "return_files_this_month": setup["files_this_month"]},
        "setup": {k: setup[k] for k in ("generate_seconds", "load_history_seconds", "history_accepted", "peak_rss_mb")},
        "airflow_run": {"seconds": airflow["seconds"], "state": airflow["state"], "task_states": airflow["task_states"],
                        "airflow_db_migrate_seconds": airflow["airflow_db_migrate_seconds"],
                        "peak_rss_mb": airflow["peak_rss_mb"]},
        "baseline_direct": {"seconds": baseline["seconds"], "accepted_this_month": baseline["accepted_this_month"],
                            "peak_rss_mb": baseline["peak_rss_mb"]},
        "ratio_to_baseline": round(airflow["seconds"] / baseline["seconds"], 2),
        # Wall time of the run not spent inside any task: what Airflow itself costs under dag.test().
        "airflow_outside_tasks_seconds": round(airflow["seconds"] - sum(s["seconds"] for s in airflow["stages"].values()), 1),
        "stages": per_stage,
        "target_seconds": TARGET_SECONDS,
        "meets_target": airflow["seconds"] < TARGET_SECONDS,
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "cpus": os.cpu_count(),
                    "load_average_1_5_15_min_at_start": [round(x, 1) for x in load_before],
                    "load_average_1_5_15_min_at_end": [round(x, 1) for x in os.getloadavg()]},
        "note": "dag.test() runs task instances one at a time in one process; a LocalExecutor with parallelism 4 "
                "overlaps the mapped rendering. Distribution is skipped (no SMTP server). The baseline and the "
                "Airflow run are timed one after the other: compare them only when the load average stayed flat.",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / ("national.json" if database == "sqlite" else "national-postgres.json")
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

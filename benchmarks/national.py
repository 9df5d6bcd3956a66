"""Benchmark: the monthly run for a national world (42 areas, ~170 contracts, 36 months) through Airflow.

Setup (timed, not compared): generate the world, load the first 35 months of returns, so the home looks as
it does the day the last month's returns arrive; then put the last month's returns in the drop folder.

With ``--runs 2`` (the default) the last two months are held back: the first is staged, the second waits in
``next/`` and is dropped just before its own run, so the scheduler runs two consecutive months.

Measured, each on its own copy of that home and in its own process:

* ``scheduler`` (the headline): ``scripts/airflow-local.sh`` as an operator starts it (API server, scheduler,
  DAG processor on 127.0.0.1; LocalExecutor at the parallelism of ``config/airflow-local.env``), each month
  triggered through the REST API; per stage the task instances' run time and their wait from queued to running,
  plus what a fresh task process pays to import the pipeline and start Chromium.

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
from datetime import datetime
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
    # The months run after the history: the first is staged in the drop folder, each later one waits in next/
    # for the scheduler phase to drop it just before its run.
    staged = [world.period(args.months - args.runs + i) for i in range(args.runs)]
    last = staged[0]
    files = sorted(p for p in staging.iterdir() if p.is_file())
    history = [p for p in files if (parsed := parse_file_name(p.name)) is None or parsed.period not in staged]
    current = [p for p in files if (parsed := parse_file_name(p.name)) is not None and parsed.period == last]
    for later in staged[1:]:
        (home / "next" / later).mkdir(parents=True, exist_ok=True)
        for path in files:
            if (parsed := parse_file_name(path.name)) is not None and parsed.period == later:
                shutil.copy2(path, home / "next" / later / path.name)
    started = time.perf_counter()
    loaded = pipeline.ingest(settings, paths=history)
    history_seconds = time.perf_counter() - started
    settings.drop_dir.mkdir(parents=True, exist_ok=True)
    for path in current:
        shutil.copy2(path, settings.drop_dir / path.name)
    shutil.rmtree(staging)
    return {"period": last, "periods": staged, "areas": len(world.areas), "contracts": len(world.contracts),
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


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _task_overheads(task_instances: list[dict]) -> tuple[dict, dict]:
    """Per stage (task id): instances, summed and slowest run time, and the time from queued to running (the
    executor's and a task process's start-up before the task's own code); and the same delays over all tasks."""
    stages: dict[str, dict] = {}
    intervals: dict[str, list[tuple[datetime, datetime]]] = {}  # (start, end) of each task instance, per stage
    delays = []
    for ti in task_instances:
        if ti["state"] != "success":
            continue
        run = ti.get("duration") or _seconds_between(ti.get("start_date"), ti.get("end_date")) or 0.0
        waited = _seconds_between(ti.get("queued_when"), ti.get("start_date"))
        entry = stages.setdefault(ti["task_id"], {"instances": 0, "seconds": 0.0, "slowest": 0.0,
                                                  "queued_to_running_seconds": 0.0, "span_seconds": 0.0})
        entry["instances"] += 1
        entry["seconds"] = round(entry["seconds"] + run, 2)
        entry["slowest"] = round(max(entry["slowest"], run), 2)
        if ti.get("start_date") and ti.get("end_date"):
            intervals.setdefault(ti["task_id"], []).append(
                (datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"])))
        if waited is not None:
            entry["queued_to_running_seconds"] = round(entry["queued_to_running_seconds"] + waited, 2)
            delays.append(waited)
    for task_id, spans in intervals.items():  # the stage's wall time, first start to last end
        stages[task_id]["span_seconds"] = round((max(e for _, e in spans) - min(b for b, _ in spans)).total_seconds(), 2)
    summary = {"tasks": len(delays), "mean": round(sum(delays) / len(delays), 2) if delays else None,
               "max": round(max(delays), 2) if delays else None, "total": round(sum(delays), 1),
               # wall time with at least one task running: the run's time less this is spent between tasks
               # (the scheduler noticing an end, expanding mapped tasks, starting the next task's process)
               "some_task_running_seconds": round(_union_seconds([i for spans in intervals.values() for i in spans]), 1)}
    return stages, summary


def _union_seconds(intervals: list[tuple[datetime, datetime]]) -> float:
    total, end = 0.0, None
    for begin, finish in sorted(intervals):
        if end is None or begin > end:
            total += (finish - begin).total_seconds()
            end = finish
        elif finish > end:
            total += (finish - end).total_seconds()
            end = finish
    return total


def _start_up_costs() -> dict:
    """What each task process pays before its work: importing the app's pipeline (a fresh interpreter, median of
    3) and starting its headless Chromium for the PDFs."""
    code = {"import_pipeline": "import time; t = time.perf_counter(); from cjmonitor import pipeline; "
                               "print(time.perf_counter() - t)",
            "browser_start": "import time; from reports.pdf import _chromium, close_browser; t = time.perf_counter(); "
                             "_chromium(); print(time.perf_counter() - t); close_browser()"}
    out = {}
    for name, snippet in code.items():
        times = []
        for _ in range(3):
            done = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed: {done.stderr[-2000:]}")
            times.append(float(done.stdout.strip().splitlines()[-1]))
        out[f"{name}_seconds"] = round(sorted(times)[1], 2)
    return out


def phase_scheduler(home: Path, periods: list[str], airflow_home: Path) -> dict:
    """``cjmonitor_monthly`` through the real scheduler, as production runs it: ``scripts/airflow-local.sh`` (API
    server, scheduler and DAG processor on 127.0.0.1, the LocalExecutor at the parallelism of
    ``config/airflow-local.env``), a run triggered through the REST API for each of ``periods`` in turn (the
    returns of each month are put in the drop folder just before its run), timed from the trigger to success."""
    from tests.airflow_processes import free_port, request, stop_group, wait_for

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CJMONITOR_SMTP"))}
    env.update({"AIRFLOW_HOME": str(airflow_home), "AIRFLOW_PORT": str(port), "CJMONITOR_HOME": str(home),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"})  # only the triggered runs
    if os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    log = airflow_home.with_name("airflow-local.log")
    url, dag_id = f"http://127.0.0.1:{port}", "cjmonitor_monthly"

    def wait(what: str, probe, timeout: float, interval: float = 2.0):
        return wait_for(what, probe, timeout, log, interval, processes=[process], fail=sys.exit)

    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen([str(ROOT / "scripts" / "airflow-local.sh")], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    runs = []
    try:
        wait("the API server", lambda: request(f"{url}/api/v2/monitor/health")[0] == 200, 300)
        passwords = json.loads((airflow_home / "passwords.json").read_text())
        token = request(f"{url}/auth/token", method="POST",
                        body={"username": "operator", "password": passwords["operator"]})[1]["access_token"]
        wait("the monthly DAG", lambda: request(f"{url}/api/v2/dags/{dag_id}", token=token)[0] == 200, 300)
        request(f"{url}/api/v2/dags/{dag_id}", method="PATCH", body={"is_paused": False}, token=token)
        start_up = round(time.perf_counter() - started, 1)
        for period in periods:
            waiting = home / "next" / period
            if waiting.is_dir():  # this month's returns arrive
                for path in sorted(waiting.iterdir()):
                    shutil.move(str(path), home / "var" / "drop" / path.name)
            triggered = time.perf_counter()
            run = request(f"{url}/api/v2/dags/{dag_id}/dagRuns", method="POST", token=token,
                          body={"logical_date": None, "conf": {"period": period}})[1]
            run_id = run["dag_run_id"]

            def finished(run_id=run_id):
                current = request(f"{url}/api/v2/dags/{dag_id}/dagRuns/{run_id}", token=token)[1]
                return current if current["state"] in ("success", "failed") else None

            final = wait(f"the {period} run", finished, 3600, interval=3)
            seconds = time.perf_counter() - triggered
            tis = request(f"{url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000",
                          token=token)[1]["task_instances"]
            states: dict[str, int] = {}
            for ti in tis:
                states[str(ti["state"])] = states.get(str(ti["state"]), 0) + 1
            stages, delays = _task_overheads(tis)
            runs.append({"period": period, "seconds": round(seconds, 1), "state": final["state"],
                         "task_states": states, "stages": stages, "queued_to_running": delays,
                         "busy_task_seconds": round(sum(s["seconds"] for s in stages.values()), 1)})
            if final["state"] != "success":
                break
    finally:
        stop_group(process)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"start_up_seconds": start_up, "runs": runs, "largest_process_rss_mb": round(children, 1),
            "seconds": runs[-1]["seconds"] if runs else None, "state": runs[-1]["state"] if runs else "not run"}


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


def _database_mb(home: Path, url: str | None) -> float:
    """The application database's size after the runs."""
    if not url:
        return round((home / "var" / "cjmonitor.db").stat().st_size / 1e6, 1)
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        size = connection.execute(text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    return round(size / 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", type=int, default=42)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=20231)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--postgres-url", default=os.environ.get("CJMONITOR_TEST_POSTGRES_URL"))
    parser.add_argument("--runs", type=int, default=2,
                        help="consecutive months run through the scheduler (the first also by dag.test and directly)")
    parser.add_argument("--skip-dag-test", action="store_true", help="leave out the dag.test() figure")
    parser.add_argument("--phase", choices=["setup", "baseline", "airflow", "scheduler"])
    parser.add_argument("--periods", help="scheduler phase: comma-separated months")
    parser.add_argument("--airflow-home", type=Path)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--period")
    args = parser.parse_args()
    if args.phase == "setup":
        print(json.dumps(phase_setup(args.home, args)))
        return
    if args.phase == "scheduler":
        print(json.dumps(phase_scheduler(args.home, args.periods.split(","), args.airflow_home)))
        return
    if args.phase:
        print(json.dumps((phase_baseline if args.phase == "baseline" else phase_airflow)(args.home, args.period)))
        return

    load_before = os.getloadavg()
    database = "postgresql" if args.postgres_url else "sqlite"
    kinds = ("baseline", "scheduler") if args.skip_dag_test else ("baseline", "airflow", "scheduler")
    names = {k: f"cj_bench_{k}_{uuid.uuid4().hex[:6]}" for k in ("setup", *kinds, "scheduler_meta")}
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
                           seed=args.seed, scale=args.scale, runs=args.runs)
            print(f"setup: {json.dumps(setup)}", file=sys.stderr)
            runs = {}
            for kind in kinds:
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
                if kind == "scheduler":
                    if base_url:
                        _copy_database(args.postgres_url, "template0", names["scheduler_meta"])
                        run_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"{base_url}/{names['scheduler_meta']}"
                    runs[kind] = _child(kind, home, run_env, periods=",".join(setup["periods"]),
                                        airflow_home=folder / "scheduler-airflow")
                    runs[kind]["database_mb"] = _database_mb(home, run_env.get("CJMONITOR_DATABASE_URL"))
                    runs[kind]["start_up_costs"] = _start_up_costs()
                else:
                    runs[kind] = _child(kind, home, run_env, period=setup["period"])
                if kind == "airflow":
                    runs[kind]["airflow_db_migrate_seconds"] = float(run_env["_MIGRATE_SECONDS"])
                print(f"{kind}: {runs[kind]['seconds']} s", file=sys.stderr)
    finally:
        if args.postgres_url:
            _drop_databases(args.postgres_url, list(names.values()))

    scheduler, baseline, airflow = runs["scheduler"], runs["baseline"], runs.get("airflow")
    first = scheduler["runs"][0] if scheduler["runs"] else {"stages": {}, "seconds": None}
    per_stage = {}
    for stage in STAGES:
        ours = first["stages"].get(stage, {})
        direct = baseline["stages"].get(stage)
        tested = (airflow or {}).get("stages", {}).get(stage, {})
        per_stage[stage] = {"scheduler_seconds": ours.get("seconds"), "instances": ours.get("instances"),
                            "slowest_instance": ours.get("slowest"), "span_seconds": ours.get("span_seconds"),
                            "queued_to_running_seconds": ours.get("queued_to_running_seconds"),
                            "dag_test_seconds": tested.get("seconds"), "direct_seconds": direct,
                            "ratio_to_direct": round(ours["seconds"] / direct, 2) if ours and direct else None}
    months = scheduler["runs"]
    result = {
        "benchmark": "cjmonitor_monthly for a national world through the real scheduler (LocalExecutor, "
                     "config/airflow-local.env), against dag.test() and the same steps called directly",
        "database": database,
        "world": {"areas": setup["areas"], "contracts": setup["contracts"], "providers": setup["providers"],
                  "months": args.months, "seed": args.seed, "scale": args.scale, "periods_run": setup["periods"],
                  "return_files": setup["files_total"], "return_files_first_month": setup["files_this_month"]},
        "setup": {k: setup[k] for k in ("generate_seconds", "load_history_seconds", "history_accepted", "peak_rss_mb")},
        "scheduler": {
            "start_up_seconds": scheduler["start_up_seconds"],
            "months": [{**{k: m[k] for k in ("period", "seconds", "state", "task_states", "busy_task_seconds",
                                              "queued_to_running")},
                        "stage_span_seconds": {stage: v["span_seconds"] for stage, v in m["stages"].items()}}
                       for m in months],
            "second_month_over_first": round(months[1]["seconds"] / months[0]["seconds"], 2) if len(months) > 1 else None,
            "largest_process_rss_mb": scheduler["largest_process_rss_mb"],
            "database_mb_after": scheduler["database_mb"],
            "per_task_start_up": scheduler["start_up_costs"]},
        "dag_test": None if airflow is None else {
            "seconds": airflow["seconds"], "state": airflow["state"], "task_states": airflow["task_states"],
            "airflow_db_migrate_seconds": airflow["airflow_db_migrate_seconds"], "peak_rss_mb": airflow["peak_rss_mb"]},
        "baseline_direct": {"seconds": baseline["seconds"], "accepted_this_month": baseline["accepted_this_month"],
                            "peak_rss_mb": baseline["peak_rss_mb"]},
        "scheduler_ratio_to_direct": round(first["seconds"] / baseline["seconds"], 2) if first["seconds"] else None,
        "stages_first_month": per_stage,
        "target_seconds": TARGET_SECONDS,
        "meets_target": bool(months) and all(m["state"] == "success" and m["seconds"] < TARGET_SECONDS for m in months),
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "cpus": os.cpu_count(),
                    "load_average_1_5_15_min_at_start": [round(x, 1) for x in load_before],
                    "load_average_1_5_15_min_at_end": [round(x, 1) for x in os.getloadavg()]},
        "note": "The scheduler runs each task in its own process (LocalExecutor); queued_to_running is each task "
                "instance's wait from queued to its start, per_task_start_up what a fresh process would pay to import "
                "the pipeline and to start Chromium (task processes inherit the application the scheduler's workers "
                "preloaded, cjmonitor/preload.py, and pay the browser's start); span_seconds is a stage's first start "
                "to last end, and some_task_running_seconds the run's wall time with any task running (the rest is "
                "spent between tasks). dag.test() runs every task in one process. Distribution is "
                "skipped (no SMTP server). The runs are timed one after another: compare them only when the load "
                "average stayed flat.",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    # national.json is the default world at scale 1; other worlds get their own file, never overwriting it.
    suffix = ("" if args.scale == 1 else f"-scale{args.scale:g}") + ("" if args.areas == 42 else f"-{args.areas}areas")
    target = RESULTS / (f"national{suffix}.json" if database == "sqlite" else f"national-postgres{suffix}.json")
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

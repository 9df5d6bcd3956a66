"""cjmonitor_monthly: ingest -> derive -> judge -> analyse -> scorecards and area reports -> distribute, once a month after the returns deadline.

Rendering is one mapped task per area: each contract's scorecard, the area's monthly report and, in a quarter's
last month, its LCJB pack (the whole-system view), each document named in the task's log.

Thin by design: each task calls one ``cjmonitor.pipeline`` step and passes IDs
(provider, area, period), never data. Ingest is mapped per provider and
rendering per area, so operators see each one in the grid. Every step is
idempotent, so reruns and backfills are safe. Settings come from the
environment (``CJMONITOR_HOME``, ``CJMONITOR_DATABASE_URL``).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

# Tasks that write to the application database share one Airflow pool, named by CJMONITOR_DB_POOL.
# scripts/airflow-local.sh creates `cjmonitor_db` (slots in config/airflow-local.env) and sets the variable, so
# that mapped ingests and reruns never swamp the database. Unset, the pool is `default_pool`, which always exists
# and cannot be deleted: a task in a pool that does not exist is never scheduled (`airflow dags test` prints "No
# tasks to run" for ever), and a task cannot check for the pool itself, because Airflow 3's task SDK gives task
# code no access to pools (no metadata database, no pool call in the execution API).
DB_POOL = os.environ.get("CJMONITOR_DB_POOL") or "default_pool"


EXECUTOR_CONFIG_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config", "k8s",
                                    "executor_config.yaml")


def render_executor_config() -> dict:
    """The rendering tasks' ``executor_config``: config/k8s/executor_config.yaml's ``pod_override`` as a V1Pod under
    the KubernetesExecutor (which needs the cncf.kubernetes provider and its client), nothing under any other."""
    if "kubernetes" not in os.environ.get("AIRFLOW__CORE__EXECUTOR", "").lower():
        return {}
    import yaml
    from kubernetes.client import ApiClient, V1Pod

    with open(EXECUTOR_CONFIG_FILE) as f:
        override = yaml.safe_load(f)["pod_override"]

    class _Response:  # ApiClient.deserialize reads a response's .data
        data = __import__("json").dumps(override)

    return {"pod_override": ApiClient().deserialize(_Response(), V1Pod)}


def _settings():
    from cjmonitor.preload import status
    from cjmonitor.settings import get_settings

    print(status())  # whether this task process started with the application already imported (README, Scaling out)
    return get_settings()


@dag(
    dag_id="cjmonitor_monthly",
    description="Monthly returns -> KPIs -> judgements -> provider scorecards",
    # The 20th at 06:00 UTC, after the 15th-of-the-month returns deadline, and whenever new returns are accepted.
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 20 * *", timezone="UTC"),
                                 assets=[Asset("cjmonitor://returns/accepted")]),
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    params={"period": Param(None, type=["null", "string"], pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                            description="Month to report, YYYY-MM; empty = the latest month with data")},
    tags=["cjmonitor"],
    doc_md=__doc__,
)
def cjmonitor_monthly():
    @task(retries=0)
    def check_database() -> str:
        """Fail at once, without retries, when the application database is missing or not upgraded."""
        from airflow.sdk.exceptions import AirflowFailException

        from cjmonitor.errors import ConfigError
        from cjmonitor.migrate import ensure_schema

        settings = _settings()
        try:
            ensure_schema(settings)
        except ConfigError as exc:
            raise AirflowFailException(f"{exc} (CJMONITOR_HOME={settings.home}); then clear this run") from None
        print(f"database {settings.database_url}: schema at the latest migration; DB tasks run in pool {DB_POOL}")
        return DB_POOL

    @task
    def list_providers(_checked: str) -> list[str]:
        from cjmonitor import pipeline

        return pipeline.provider_ids(_settings())

    @task(max_active_tis_per_dagrun=2, pool=DB_POOL)
    def ingest_provider(provider_id: str) -> dict:
        from cjmonitor import pipeline

        summary = pipeline.ingest(_settings(), provider_id)
        result = {"provider_id": provider_id, "accepted": summary.accepted, "rejected": summary.rejected,
                  "duplicate": summary.duplicate}
        if summary.rejected:
            print(f"{provider_id}: {summary.rejected} returns rejected; error reports: {summary.error_reports}")
        return result

    # Derive and judge are incremental: every month (series) whose inputs changed since it was computed, which on
    # a monthly run is the new month plus any resubmitted, varied or newly cohorted ones; the rest are skipped.
    @task(pool=DB_POOL)
    def derive_kpis(_ingested: list[dict]) -> dict:
        from cjmonitor import pipeline

        counts = pipeline.derive(_settings())
        print(counts.summary())
        return {"computed": counts.computed, "skipped": counts.skipped, "stored": counts.stored}

    @task(pool=DB_POOL)
    def judge_kpis(_derived: dict) -> str:
        from cjmonitor import pipeline

        settings = _settings()
        print(pipeline.judge(settings).summary())
        return get_current_context()["params"].get("period") or pipeline.latest_period(settings)

    @task(pool=DB_POOL)
    def analyse_outcomes(period: str) -> str:
        from cjmonitor import pipeline

        print(pipeline.analyse(_settings()))
        return period

    @task
    def list_areas(_period: str) -> list[str]:
        from cjmonitor import pipeline

        return pipeline.area_codes(_settings())

    # One task per area renders all its documents (each contract's scorecard, the monthly report and, in a
    # quarter's last month, the LCJB pack), each named in the task's log: a task per document paid for importing
    # the app and starting a browser every time, which was most of the cost (README, Scale-out).
    @task(max_active_tis_per_dagrun=2, executor_config=render_executor_config())
    def render_area(area_code: str, period: str) -> dict:
        from cjmonitor import pipeline

        result = pipeline.render_area(_settings(), area_code, period)
        return {kind: len(paths) for kind, paths in result["documents"].items()}

    @task
    def render_index(_areas: list[dict], period: str) -> str:
        from cjmonitor import pipeline

        return pipeline.render_index_only(_settings(), period)

    @task
    def list_recipients(_index: str) -> list[int]:
        from airflow.sdk.exceptions import AirflowSkipException

        from cjmonitor import pipeline
        from cjmonitor.distribute import SmtpSettings

        recipients = pipeline.recipient_ids(_settings())
        if SmtpSettings.from_env() is None:
            # Skipped here, once, rather than a task process per recipient that would only skip itself.
            raise AirflowSkipException(f"CJMONITOR_SMTP_HOST is not set: documents are not emailed to the "
                                       f"{len(recipients)} recipients")
        return recipients

    @task(max_active_tis_per_dagrun=2, retries=3)
    def distribute_to(recipient_id: int, period: str) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from cjmonitor.distribute import SmtpSettings, distribute

        if SmtpSettings.from_env() is None:
            raise AirflowSkipException("CJMONITOR_SMTP_HOST is not set: documents are not emailed")
        result = distribute(_settings(), period, recipient_ids=[recipient_id])
        (delivery,) = result["deliveries"]
        print(f"{delivery['recipient']}: {delivery['status']}, {len(delivery['documents'])} documents")
        if delivery["status"] in ("failed", "refused"):
            raise RuntimeError(f"delivery to {delivery['recipient']} {delivery['status']}: see the delivery log")
        return {"recipient": delivery["recipient"], "status": delivery["status"], "documents": len(delivery["documents"])}

    ingested = ingest_provider.expand(provider_id=list_providers(check_database()))
    period = analyse_outcomes(judge_kpis(derive_kpis(ingested)))
    areas = render_area.partial(period=period).expand(area_code=list_areas(period))
    index = render_index(areas, period)
    distribute_to.partial(period=period).expand(recipient_id=list_recipients(index))


dag = cjmonitor_monthly()

if __name__ == "__main__":
    dag.test()

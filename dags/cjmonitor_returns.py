"""cjmonitor_returns: every morning, fetch and load new provider returns; flag late ones.

One mapped task per provider (each fetches from that provider's sources, lands, validates
and loads, retrying with backoff when a source is unreachable). When anything new is
accepted, the ``cjmonitor://returns/accepted`` asset is updated, which also triggers
``cjmonitor_monthly``. ``late_returns_alert`` fails, naming every provider whose return for
the previous month is late or missing, so operators see it red in the grid and in the logs.
Settings come from the environment (``CJMONITOR_HOME``, ``CJMONITOR_DATABASE_URL``).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

RETURNS_ACCEPTED = Asset("cjmonitor://returns/accepted")
# Shared with cjmonitor_monthly (see there): `default_pool` unless CJMONITOR_DB_POOL names one that exists.
DB_POOL = os.environ.get("CJMONITOR_DB_POOL") or "default_pool"


def _settings():
    from cjmonitor.settings import get_settings

    return get_settings()


@dag(
    dag_id="cjmonitor_returns",
    description="Fetch, land, validate and load providers' returns; alert on late ones",
    schedule="0 7 * * *",
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": True,
                  "max_retry_delay": timedelta(minutes=30)},
    tags=["cjmonitor"],
    doc_md=__doc__,
)
def cjmonitor_returns():
    @task
    def list_providers() -> list[str]:
        from cjmonitor import pipeline

        return pipeline.provider_ids(_settings())

    @task(max_active_tis_per_dagrun=2, pool=DB_POOL)
    def ingest_provider(provider_id: str) -> dict:
        from cjmonitor import pipeline

        summary = pipeline.ingest(_settings(), provider_id)
        for outcome in summary.outcomes:
            if outcome["status"] != "accepted":
                print(f"{provider_id}: {outcome['file']} {outcome['status']}: {outcome['message']}")
        return {"provider_id": provider_id, "accepted": summary.accepted, "rejected": summary.rejected,
                "refused": summary.refused, "unrecognised": summary.unrecognised}

    @task(outlets=[RETURNS_ACCEPTED])
    def publish_if_new(results: list[dict]) -> int:
        from airflow.sdk.exceptions import AirflowSkipException

        accepted = sum(r["accepted"] for r in results)
        if not accepted:
            raise AirflowSkipException("no new return accepted: downstream DAGs are not triggered")
        return accepted

    @task(retries=0, trigger_rule="all_done")
    def late_returns_alert(_results: list[dict]) -> list[dict]:
        from cjmonitor import pipeline

        context = get_current_context()
        period = pipeline.month_before(context["logical_date"] or context["data_interval_end"])
        overdue = pipeline.overdue_returns(_settings(), period)
        for row in overdue:
            print(f"LATE: {row['provider_name']} ({row['provider_id']}) {row['return_type']} for {period}: "
                  f"{row['status']}, due {row['due']}")
        if overdue:
            names = sorted({row["provider_id"] for row in overdue})
            raise RuntimeError(f"{len(overdue)} returns for {period} are late or missing, from: {', '.join(names)}")
        return overdue

    results = ingest_provider.expand(provider_id=list_providers())
    publish_if_new(results)
    late_returns_alert(results)


dag = cjmonitor_returns()

if __name__ == "__main__":
    dag.test()

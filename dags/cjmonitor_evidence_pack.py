"""cjmonitor_evidence_pack: write one contract's renegotiation evidence pack, on demand.

Trigger it from the UI ("Trigger DAG" with parameters) or the REST API with
``{"conf": {"contract_id": "TTG-E23000005", "as_of": "2025-12"}}``. It writes the pack's HTML,
PDF and XLSX annex under ``out/packs/<contract>/<as_of>/`` and records them as artifacts.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task


@dag(
    dag_id="cjmonitor_evidence_pack",
    description="Renegotiation evidence pack for one contract (manual trigger with parameters)",
    schedule=None,
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "contract_id": Param("", type="string", minLength=1, description="Contract id, e.g. TTG-E23000005"),
        "as_of": Param(None, type=["null", "string"], pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                       description="Last month of evidence, YYYY-MM; empty = the latest judged month"),
    },
    tags=["cjmonitor"],
    doc_md=__doc__,
)
def cjmonitor_evidence_pack():
    @task
    def write_pack() -> dict:
        from cjmonitor import pipeline
        from cjmonitor.settings import get_settings

        params = get_current_context()["params"]
        paths = pipeline.evidence_pack(get_settings(), params["contract_id"], params.get("as_of"))
        print(f"evidence pack written: {paths['pdf']}")
        return paths

    write_pack()


dag = cjmonitor_evidence_pack()

if __name__ == "__main__":
    dag.test()

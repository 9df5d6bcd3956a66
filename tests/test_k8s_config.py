"""The KubernetesExecutor's files in config/k8s/ are real: the pod template and the rendering tasks'
``executor_config`` parse, have the shape the KubernetesExecutor needs, and the DAG attaches the override.

Checked with PyYAML and the structure of a core/v1 Pod, not with the kubernetes client's models: the
cncf.kubernetes provider (and its client) is not a dependency here, so Airflow's own pod-template loader cannot run.
"""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO_ROOT

K8S = REPO_ROOT / "config" / "k8s"
QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi)?$")


def _base(pod: dict) -> dict:
    assert pod["apiVersion"] == "v1" and pod["kind"] == "Pod"
    (base,) = [c for c in pod["spec"]["containers"] if c["name"] == "base"]  # the executor's task container
    for kind in ("requests", "limits"):
        assert all(QUANTITY.match(str(v)) for v in base["resources"][kind].values()), base["resources"]
    return base


def test_pod_template_is_a_pod_with_the_base_container_and_the_shared_home():
    pod = yaml.safe_load((K8S / "pod-template.yaml").read_text())
    base = _base(pod)
    assert pod["spec"]["restartPolicy"] == "Never"
    env = {e["name"]: e for e in base["env"]}
    assert env["CJMONITOR_HOME"]["value"] == base["volumeMounts"][0]["mountPath"]
    # Secrets are referenced, never written into the file.
    for name in ("CJMONITOR_DATABASE_URL", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "CJMONITOR_PSEUDONYMISATION_KEY"):
        assert "secretKeyRef" in env[name]["valueFrom"] and "value" not in env[name]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[base["volumeMounts"][0]["name"]]["persistentVolumeClaim"]["claimName"]


def test_executor_config_overrides_the_base_container_and_the_dag_uses_it(monkeypatch):
    override = yaml.safe_load((K8S / "executor_config.yaml").read_text())["pod_override"]
    assert _base(override)["resources"]["limits"]["cpu"] == "2"
    import importlib.util

    spec = importlib.util.spec_from_file_location("cjmonitor_monthly_dag", REPO_ROOT / "dags" / "cjmonitor_monthly.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.EXECUTOR_CONFIG_FILE == str(K8S / "executor_config.yaml")
    assert module.dag.get_task("render_area").executor_config == {}  # not under the LocalExecutor

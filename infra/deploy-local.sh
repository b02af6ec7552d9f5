#!/usr/bin/env bash
# Deploy serverless.yml (stage "local") to a local AWS: LocalStack when one answers on the port,
# otherwise a moto server started here as a Docker-free stand-in on the same port.
#
#   make deploy-local                      # port 4566
#   JOBLINE_AWS_PORT=4570 make deploy-local
#
# Neither runs Lambda code without Docker, and moto has no API Gateway v2: the deploy proves the
# stack (functions, EventBridge schedule, S3 bucket, IAM, SSM-resolved environment) is created;
# the handlers themselves are tested in-process (tests/test_functions.py).
# Connection strings are seeded into SSM from DATABASE_URL/REDIS_URL (or `jobline run`'s
# services.json), then resolved by serverless.yml's ${ssm:...} variables.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${JOBLINE_AWS_PORT:-4566}"
ENDPOINT="http://localhost:${PORT}"
HOME_DIR="${JOBLINE_HOME:-.jobline}"
PY="${PYTHON:-.venv/bin/python}"
STAGE=local
export JOBLINE_AWS_PORT="$PORT" AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" \
    AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
    SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off
mkdir -p "$HOME_DIR"

# Does something answer 2xx at this URL? (Python rather than curl: one less system package.)
answers() { "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" >/dev/null 2>&1; }

if answers "${ENDPOINT}/_localstack/health"; then
    echo "deploy-local: LocalStack at ${ENDPOINT}"
elif answers "${ENDPOINT}/moto-api/"; then
    echo "deploy-local: moto server already running at ${ENDPOINT}"
else
    echo "deploy-local: no LocalStack on :${PORT}; starting a moto server (pid file ${HOME_DIR}/moto.pid)"
    "$(dirname "$PY")/moto_server" -H 127.0.0.1 -p "$PORT" >"${HOME_DIR}/moto.log" 2>&1 &
    echo $! >"${HOME_DIR}/moto.pid"
    for _ in $(seq 1 100); do
        answers "${ENDPOINT}/moto-api/" && break
        sleep 0.1 # waiting for a process we just started to listen
    done
    answers "${ENDPOINT}/moto-api/" || { echo "moto server did not start; see ${HOME_DIR}/moto.log" >&2; exit 1; }
fi

if [[ ! -x infra/node_modules/.bin/serverless ]]; then
    npm ci --prefix infra --no-audit --no-fund
fi

# Seed the parameters serverless.yml resolves (and the runtime config prefix).
"$PY" - "$ENDPOINT" "$STAGE" "$HOME_DIR" <<'PYEOF'
import json, os, sys
from pathlib import Path
import boto3
endpoint, stage, home = sys.argv[1:4]
services = Path(home) / "services.json"
known = json.loads(services.read_text()) if services.exists() else {}
db = os.environ.get("DATABASE_URL") or known.get("database_url") or "postgresql://jobline@localhost:5432/jobline"
rd = os.environ.get("REDIS_URL") or known.get("redis_url") or "redis://localhost:6379/0"
ssm = boto3.client("ssm", endpoint_url=endpoint)
for name, value in ((f"/jobline/{stage}/database-url", db), (f"/jobline/{stage}/redis-url", rd),
                    (f"/jobline/{stage}/config/JOBLINE_LEASE_MS", "30000")):
    ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
print(f"deploy-local: SSM parameters under /jobline/{stage}/ seeded")
PYEOF

PATH="$(dirname "$PY"):$PATH" infra/node_modules/.bin/serverless deploy --stage "$STAGE"

"$PY" - "$ENDPOINT" <<'PYEOF'
import sys
import boto3
cf = boto3.client("cloudformation", endpoint_url=sys.argv[1])
stack = cf.describe_stacks(StackName="jobline-local")["Stacks"][0]
resources = cf.list_stack_resources(StackName="jobline-local")["StackResourceSummaries"]
print(f"deploy-local: stack jobline-local {stack['StackStatus']}, {len(resources)} resources")
PYEOF

#!/usr/bin/env bash
# CI: the two distributions. Builds the SDK's wheel from sdk/ alone and the server's from the
# repository root; checks that the SDK wheel holds only `promptledger` and depends only on ranged,
# light libraries, and that the server wheel carries the very same package files (one copy of the
# protocol code). Installs the SDK wheel alone in a clean Python 3.11 virtualenv, checks that Django
# and the server's code are not there, then runs the SDK's own tests in it: the live-server ones
# against a server started from the main .venv (`manage.py run_embedded`: SQLite, a worker on the
# filesystem broker, the demo data, in a temporary folder) with an admin's token.
#
# Run from anywhere: `sdk/ci_check.sh` (`.ci/run` calls it after `make test`, which makes .venv).
# Stops the server it started; keeps its temporary folder only when a step failed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3.11}
SERVER_PYTHON=${SERVER_PYTHON:-$REPO/.venv/bin/python}
unset PYTHONPATH DJANGO_SETTINGS_MODULE  # nothing of the checkout may leak into the SDK's virtualenv

work=$(mktemp -d "${TMPDIR:-/tmp}/promptledger-sdk-check.XXXXXX")
server_pid=""
started=$(date +%s.%N)
step_started=$started

elapsed() { printf '%.1f' "$(echo "$(date +%s.%N) - $1" | bc)"; }
step() {
  [ "$step_started" = "$started" ] || echo "[sdk]   ... ok ($(elapsed "$step_started") s)"
  step_started=$(date +%s.%N)
  echo "[sdk] $*"
}

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM -- "-$server_pid" 2>/dev/null || true  # its own process group: runserver and its worker
  for _ in $(seq 1 80); do
    kill -0 -- "-$server_pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -KILL -- "-$server_pid" 2>/dev/null || true
  server_pid=""
}

finish() {
  local status=$?
  stop_server
  if [ "$status" -ne 0 ]; then
    echo "[sdk] FAILED (exit $status) after $(elapsed "$started") s; the server's log ends:" >&2
    tail -n 40 "$work/server.log" >&2 2>/dev/null || true
    echo "[sdk] kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap finish EXIT

[ -x "$SERVER_PYTHON" ] || { echo "[sdk] no server virtualenv at $SERVER_PYTHON: run make install first" >&2; exit 1; }

# The server starts first (migrate, demo data, worker), while the wheels are built and installed.
step "starting a server in the background from the main .venv (run_embedded: SQLite in $work/server-var)"
port=$("$SERVER_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server_env=(env -u DATABASE_URL -u CELERY_BROKER_URL -u PROMPTLEDGER_CACHE_URL -u DJANGO_ENV
            PROMPTLEDGER_VAR_DIR="$work/server-var")
setsid "${server_env[@]}" "$SERVER_PYTHON" manage.py run_embedded --host 127.0.0.1 --port "$port" \
  >"$work/server.log" 2>&1 </dev/null &
server_pid=$!
url="http://127.0.0.1:$port"

step "building both wheels (the SDK from a copy of sdk/ alone, the server from the checkout)"
mkdir -p "$work/src/server" "$work/wheels"
tar -C "$REPO" --exclude=./.venv --exclude=./var --exclude=./.git --exclude=./node_modules --exclude=./build \
  --exclude=./dist --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache -cf - . \
  | tar -C "$work/src/server" -xf -
cp -R "$work/src/server/sdk" "$work/src/sdk"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheels" "$work/src/sdk" "$work/src/server"
"$PYTHON" - "$work/wheels" <<'EOF'
import glob
import sys
import zipfile

wheels = sys.argv[1]
[sdk] = glob.glob(f"{wheels}/promptledger_sdk-*.whl")
[server] = glob.glob(f"{wheels}/promptledger_server-*.whl")


def files(path):
    with zipfile.ZipFile(path) as wheel:
        return {name: wheel.read(name) for name in wheel.namelist()}


sdk_files, server_files = files(sdk), files(server)
top = {name.split("/")[0] for name in sdk_files if ".dist-info/" not in name}
assert top == {"promptledger"}, f"the SDK wheel holds more than promptledger: {top}"
metadata = next(body for name, body in sdk_files.items() if name.endswith(".dist-info/METADATA")).decode()
requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
runtime = [r for r in requires if "extra ==" not in r]
names = sorted(r.split(">")[0].split("<")[0].split("=")[0].split(";")[0].strip().lower() for r in runtime)
assert names == ["jinja2", "pyyaml"], f"the SDK depends on {runtime}"
assert not [r for r in runtime if "==" in r], f"the SDK pins exactly: {runtime}"
entry_points = next(body for name, body in sdk_files.items() if name.endswith(".dist-info/entry_points.txt"))
assert b"promptledger = promptledger.cli:main" in entry_points, entry_points
package = {name: body for name, body in sdk_files.items() if name.startswith("promptledger/")}
bundled = {name: body for name, body in server_files.items() if name.startswith("promptledger/")}
assert package == bundled, f"the server wheel's promptledger differs from the SDK's: {sorted(set(package) ^ set(bundled))}"
print(f"[sdk]   {sdk.rsplit('/', 1)[1]}: promptledger only, requires {', '.join(runtime)}")
print(f"[sdk]   {server.rsplit('/', 1)[1]}: carries the same {len(package)} promptledger files, byte for byte")
EOF

step "a clean virtualenv with the SDK wheel alone, used from a folder outside the checkout"
cd "$work"  # from here on nothing of the checkout is on sys.path by accident
"$PYTHON" -m venv "$work/sdk-venv"
venv="$work/sdk-venv/bin"
"$venv/pip" install --quiet "$work"/wheels/promptledger_sdk-*.whl
echo "[sdk]   installed: $("$venv/pip" list --format=freeze --exclude pip --exclude setuptools | tr '\n' ' ')"
if "$venv/python" -c "import django" 2>/dev/null; then
  echo "[sdk] import django succeeded in the SDK's virtualenv" >&2
  exit 1
fi
echo "[sdk]   import django: ModuleNotFoundError, as it should"
"$venv/python" - <<'EOF'
import importlib.util
import sys

import promptledger

server_side = ("django", "rest_framework", "celery", "kombu", "psycopg", "openai", "anthropic",
               "config", "registry", "evals", "approvals", "audit", "webhooks")
found = [name for name in server_side if importlib.util.find_spec(name)]
assert not found, f"the SDK's virtualenv can import {found}"
assert promptledger.__file__.startswith(sys.prefix), f"promptledger comes from {promptledger.__file__}"
print(f"[sdk]   promptledger {promptledger.__version__} from {promptledger.__file__}")
EOF
"$venv/promptledger" --version
"$venv/pip" install --quiet "pytest>=8"

step "waiting for the server at $url, then an admin's token"
for _ in $(seq 1 240); do
  kill -0 "$server_pid" 2>/dev/null || { echo "[sdk] the server exited" >&2; exit 1; }
  "$venv/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url/healthz" \
    2>/dev/null && break
  sleep 0.25
done
"$venv/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)" "$url/healthz"
token=$("${server_env[@]}" "$SERVER_PYTHON" "$REPO/manage.py" issue_token admin \
  --scope prompts:read --scope prompts:write --scope evals:run 2>>"$work/server.log" | awk 'END { print $NF }')

step "the SDK's tests in its virtualenv (Django-free ones, then the CLI and client against $url)"
mkdir -p "$work/sdk-tests"
tar -C "$REPO/sdk" --exclude=__pycache__ --exclude=.pytest_cache -cf - tests pyproject.toml \
  | tar -C "$work/sdk-tests" -xf -
(cd "$work/sdk-tests" && PROMPTLEDGER_SDK_TEST_URL="$url" PROMPTLEDGER_SDK_TEST_TOKEN="$token" \
  "$venv/pytest" -p no:cacheprovider -v)

step "stopping the server"
stop_server
echo "[sdk]   ... ok ($(elapsed "$step_started") s)"
echo "[sdk] both distributions checked in $(elapsed "$started") s"

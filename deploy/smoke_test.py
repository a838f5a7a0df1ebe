"""Production smoke test: install the repository as the Dockerfile does and drive the real stack.

A fresh virtualenv gets ``pip install .`` (no extras, no editable install); the processes run from
the checkout with ``PYTHONPATH`` pointing at it, as in the image, each started by
``deploy/run.sh`` exactly as docker-compose.yml starts it: release (migrate + collectstatic),
``check --deploy``, gunicorn (gthread), a Celery worker and Celery beat, with
``DJANGO_ENV=production`` on PostgreSQL and Redis. Then a journey over HTTP: /healthz, the login
page and its static files, signing in, a team, a model, a prompt and a version, an eval run the
worker finishes, its gate, a deploy request deployed and resolved, signed webhooks the worker
delivers to a local receiver, a signed checkpoint from beat, an audit export verified offline by
the standard library alone (and a tampered copy refused), and /metrics (401 without its token,
then the journey's counts).

Standard library only: run it with the interpreter the image uses (``python3.11
deploy/smoke_test.py``). It needs PostgreSQL (``--postgres``, a server URL; the database
``promptledger_smoke`` is dropped and recreated) and Redis (``--redis``, a database it flushes).
Every process it starts is stopped when it ends; the temporary folder is removed unless a step
failed or ``--keep`` is given. Exit 0 when every step passed.
"""

import argparse
import base64
import concurrent.futures
import glob
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN = "deploy/run.sh"
DATABASE = "promptledger_smoke"
ADMIN = "smoke-admin"


class SmokeFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise SmokeFailure(message)


def wait_for(predicate, *, timeout, what, interval=0.25):
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, SmokeFailure) as exc:
            last_error = exc
        time.sleep(interval)
    raise SmokeFailure(f"timed out after {timeout:g} s waiting for {what}" + (f" ({last_error})" if last_error else ""))


class Steps:
    """Times each step and prints it as it ends."""

    def __init__(self):
        self.timings = []
        self.started = time.monotonic()

    def run(self, name, function, *args, **kwargs):
        print(f"[smoke] {name} ...", flush=True)
        started = time.monotonic()
        try:
            result = function(*args, **kwargs)
        except BaseException:
            self.timings.append((name, time.monotonic() - started, "FAILED"))
            raise
        self.timings.append((name, time.monotonic() - started, "ok"))
        print(f"[smoke] {name}: ok ({time.monotonic() - started:.1f} s)", flush=True)
        return result

    def report(self):
        print("\n[smoke] step timings", flush=True)
        for name, seconds, outcome in self.timings:
            print(f"  {seconds:6.1f} s  {outcome:6}  {name}")
        print(f"  {time.monotonic() - self.started:6.1f} s  total", flush=True)


class Stack:
    """The processes this test started, each in its own process group, and their logs."""

    def __init__(self, workdir, env):
        self.workdir, self.env = workdir, env
        self.processes = {}

    def command(self, *args, stdin=None, timeout=300):
        """Run a one-off command of the installed app (from the checkout, like the image)."""
        done = subprocess.run(  # noqa: S603 - our own fixed commands
            args, cwd=REPO, env=self.env, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            output = f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
            raise SmokeFailure(f"{' '.join(args)} exited {done.returncode}:\n{output}")
        return done.stdout

    def manage(self, *args, stdin=None):
        return self.command("python", "manage.py", *args, stdin=stdin)

    def start(self, name):
        log = open(self.workdir / f"{name}.log", "wb")  # closed in stop()
        process = subprocess.Popen(  # noqa: S603 - our own fixed command
            [RUN, name], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = (process, log)

    def log(self, name):
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self):
        for name, (process, _) in self.processes.items():
            check(process.poll() is None, f"{name} exited with {process.returncode}:\n{self.log(name)[-3000:]}")

    def stop(self):
        """SIGTERM each process group (gunicorn's and the worker's children too), SIGKILL what stays."""
        for process, _ in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, (process, log) in self.processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"[smoke] {name} did not stop in time: SIGKILL", flush=True)
            try:
                os.killpg(process.pid, signal.SIGKILL)  # children left behind by a stopped leader
            except ProcessLookupError:
                pass
            process.wait()
            log.close()

    def print_logs(self, lines=60):
        for name in self.processes:
            tail = self.log(name).splitlines()[-lines:]
            print(f"\n[smoke] last {len(tail)} lines of {name}.log:\n" + "\n".join(tail), flush=True)


class Client:
    """HTTP to the local gunicorn as the TLS proxy would forward it (``X-Forwarded-Proto: https``)."""

    def __init__(self, port):
        self.port = port
        self.origin = f"https://127.0.0.1:{port}"
        self.cookies = {}

    def request(self, method, path, *, body=None, headers=None, token=None, https=True):
        headers = dict(headers or {})
        if https:
            headers["X-Forwarded-Proto"] = "https"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, response.headers, data

    def api(self, method, path, body=None, *, token, expect):
        status, _, data = self.request(method, path, body=body, token=token)
        check(status == expect, f"{method} {path}: expected {expect}, got {status}: {data[:2000]!r}")
        return json.loads(data) if data else None


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebhookReceiver:
    """A local receiver for the webhooks the worker delivers; keeps each POST's headers and raw body."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.headers, body))  # a Message: names are case-insensitive
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, secret):
        """``{event: body}`` of the deliveries whose signature verifies with ``secret``."""
        verified = {}
        for headers, body in list(self.received):
            timestamp = headers["X-Promptledger-Timestamp"]
            expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
            if hmac.compare_digest("sha256=" + expected, headers["X-Promptledger-Signature"]):
                verified[headers["X-Promptledger-Event"]] = json.loads(body)
        return verified

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def tool(*args, env=None):
    """A command-line tool of the machine (psql's, redis-cli)."""
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SmokeFailure(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


# --- steps ----------------------------------------------------------------------------------------


def same_commands_as_compose():
    """docker-compose.yml and the Dockerfile start every process through deploy/run.sh, as this test does."""
    compose = (REPO / "docker-compose.yml").read_text()
    commands = re.findall(r"^\s*command:(.*)$", compose, re.MULTILINE)
    check(commands and all(RUN in line for line in commands), f"a compose command bypasses {RUN}: {commands}")
    started = set(re.findall(rf"{re.escape(RUN)}\W+(\w+)", " ".join(commands)))
    check(started == {"release", "web", "worker", "beat"}, f"compose starts {sorted(started)} through {RUN}")
    cmd = re.findall(r"^CMD (.*)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    check(cmd == ['["deploy/run.sh", "web"]'], f"the Dockerfile's CMD is {cmd}")


def build_leftovers():
    return set(glob.glob(str(REPO / "*.egg-info")) + glob.glob(str(REPO / "build")))


def install(workdir):
    venv = workdir / "venv"
    tool(sys.executable, "-m", "venv", str(venv))
    # In-tree build leftovers are removed afterwards, as the Dockerfile does (only the ones made here).
    before = build_leftovers()
    try:
        done = subprocess.run(  # noqa: S603 - pip of the fresh venv
            [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "."],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        for leftover in build_leftovers() - before:
            shutil.rmtree(leftover, ignore_errors=True)
    if done.returncode != 0:
        raise SmokeFailure(f"pip install . failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    tool(str(venv / "bin" / "pip"), "check", "--disable-pip-version-check")
    return venv


def reset_services(postgres, redis_url):
    server = urllib.parse.urlsplit(postgres)
    pg = ["-h", server.hostname or "127.0.0.1", "-p", str(server.port or 5432), "-U", server.username or "postgres"]
    pg_env = dict(os.environ)
    if server.password:
        pg_env["PGPASSWORD"] = urllib.parse.unquote(server.password)
    tool("dropdb", *pg, "--if-exists", "--force", DATABASE, env=pg_env)
    tool("createdb", *pg, DATABASE, env=pg_env)
    broker = urllib.parse.urlsplit(redis_url)
    db = broker.path.strip("/") or "0"
    redis_args = ["-h", broker.hostname or "127.0.0.1", "-p", str(broker.port or 6379), "-n", db]
    check(tool("redis-cli", *redis_args, "flushdb").strip() == "OK", "redis-cli flushdb did not answer OK")
    return postgres.rstrip("/") + f"/{DATABASE}"


def app_environment(workdir, venv, database_url, redis_url, port):
    """The variables the image and docker-compose.yml give every process, pointed at this machine."""
    var = workdir / "var"
    (workdir / "audit").mkdir()
    return {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(workdir)),
        "LANG": "C.UTF-8",
        # As the Dockerfile: run from the source tree.
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PROMPTLEDGER_VAR_DIR": str(var),
        "STATIC_ROOT": str(var / "staticfiles"),
        # As docker-compose.yml.
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "PROMPTLEDGER_AUDIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "PROMPTLEDGER_AUDIT_SINK": str(workdir / "audit" / "checkpoints.jsonl"),
        "PROMPTLEDGER_SECRETS_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "PROMPTLEDGER_METRICS_TOKEN": secrets.token_urlsafe(24),
        "LOG_LEVEL": "INFO",
        "WEB_CONCURRENCY": "2",
        "PROMPTLEDGER_BIND": f"127.0.0.1:{port}",
        # A heartbeat checkpoint every few seconds, so the test sees beat and the worker sign one.
        "PROMPTLEDGER_AUDIT_CHECKPOINT_SECONDS": "5",
        # The test's own webhook receiver is on loopback, which is refused unless allowed.
        "PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
    }


def create_admin(stack):
    """An admin with a password and a token, as an operator makes one; and the auditors' public key."""
    password = secrets.token_urlsafe(24)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # independent of the rest
        key = pool.submit(stack.manage, "audit_public_key")
        stack.manage("user", "create", ADMIN, "--password-stdin", stdin=password + "\n")
        stack.manage("user", "grant-role", ADMIN, "admin")
        scopes = []
        for scope in ("prompts:read", "prompts:write", "evals:run", "deploy", "audit:read"):
            scopes += ["--scope", scope]
        token = stack.manage("issue_token", ADMIN, *scopes, "--name", "smoke").split()[-1]
        public_key = key.result().split()[-1]
    return password, token, public_key


def healthy(client):
    status, _, data = client.request("GET", "/healthz")
    if status != 200:
        raise SmokeFailure(f"/healthz {status}: {data[:500]!r}")
    body = json.loads(data)
    check(body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"], f"/healthz: {body}")
    status, headers, _ = client.request("GET", "/healthz", https=False)
    check(status == 301 and headers["Location"].startswith("https://"), f"plain HTTP is not redirected: {status}")
    return body


def login_page_and_static(client):
    status, headers, data = client.request("GET", "/accounts/login/")
    check(status == 200, f"login page: {status}")
    for header in ("Content-Security-Policy", "Strict-Transport-Security"):
        check(headers.get(header), f"login page without {header}")
    html = data.decode()
    assets = sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', html)))
    check(assets, "the login page references no static file")
    for asset in assets:
        status, headers, body = client.request("GET", asset)
        check(status == 200 and body, f"{asset}: {status}")
        # The manifest storage names files by content hash, which WhiteNoise serves as immutable.
        check(re.search(r"\.[0-9a-f]{12}\.", asset), f"{asset} is not a hashed (manifest) name")
        check("max-age" in headers.get("Cache-Control", ""), f"{asset}: no long-lived Cache-Control")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    check(token, "no CSRF token in the login form")
    return token.group(1), assets


def sign_in(client, csrf, password):
    form = urllib.parse.urlencode({"username": ADMIN, "password": password, "csrfmiddlewaretoken": csrf}).encode()
    status, headers, data = client.request(
        "POST",
        "/accounts/login/",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": client.origin,
            "Referer": f"{client.origin}/accounts/login/",
        },
    )
    check(status == 302, f"sign-in answered {status}: {data[:1000]!r}")
    check("sessionid" in client.cookies, "sign-in set no session cookie")
    landing = urllib.parse.urlsplit(headers["Location"]).path
    status, _, data = client.request("GET", landing)
    check(status == 200 and ADMIN.encode() in data, f"{landing} after sign-in: {status}")
    client.cookies.clear()  # the API calls below use the token only


def registry_objects(client, token):
    client.api("POST", "/api/v1/teams/", {"slug": "smoke", "name": "Smoke"}, token=token, expect=201)
    client.api(
        "POST", "/api/v1/teams/smoke/members/", {"username": ADMIN, "role": "owner"}, token=token, expect=201
    )
    client.api(
        "POST",
        "/api/v1/llm-models/",
        {"provider": "offline", "model_id": "offline-echo-1", "status": "approved", "owner": ADMIN,
         "failure_modes": "Echoes its input."},
        token=token,
        expect=201,
    )
    client.api(
        "POST",
        "/api/v1/prompts/",
        {"slug": "smoke-greeting", "name": "Smoke greeting", "team": "smoke", "tier": 2, "owner": ADMIN,
         "tags": ["smoke"], "data_categories": []},
        token=token,
        expect=201,
    )
    version = client.api(
        "POST",
        "/api/v1/prompts/smoke-greeting/versions/",
        {
            "messages": [{"role": "user", "content": "Say hello to {{ name }}."}],
            "variables": {"name": {"type": "string", "required": True}},
            "model": {"provider": "offline", "name": "offline-echo-1", "params": {"temperature": 0},
                      "response_schema": None},
            "message": "production smoke test",
        },
        token=token,
        expect=201,
    )
    check(re.fullmatch(r"[0-9a-f]{64}", version["content_hash"]), f"version without a content hash: {version}")
    rendered = client.api(
        "POST", "/api/v1/prompts/smoke-greeting/versions/1/render", {"variables": {"name": "Ada"}},
        token=token, expect=200,
    )
    check("Ada" in json.dumps(rendered), f"render did not use the variable: {rendered}")
    client.api("POST", "/api/v1/suites/", {"slug": "smoke-core", "name": "Smoke core", "team": "smoke"},
               token=token, expect=201)
    cases = [
        {"vars": {"name": name}, "assertions": [
            {"type": "contains", "value": name},
            {"type": "regex", "value": f"^Say hello to {name}\\.$"},  # google-re2, a compiled wheel
            {"type": "not_contains", "value": "error"},
        ]}
        for name in ("Ada", "Grace", "Edsger")
    ]
    client.api("POST", "/api/v1/suites/smoke-core/cases/", cases, token=token, expect=201)
    # Tier 2 deploys on a passing gate, no approval: the deploy below checks the run's evidence.
    client.api("PUT", "/api/v1/prompts/smoke-greeting/gate",
               {"suites": [{"suite": "smoke-core", "min_pass_rate": 1.0}], "max_regression": 0.05},
               token=token, expect=200)
    return version


def webhook_subscription(client, token, receiver):
    made = client.api(
        "POST", "/api/v1/webhooks/",
        {"url": receiver.url, "team": "smoke", "events": ["deployment.changed", "eval_run.completed"]},
        token=token, expect=201,
    )
    return made["secret"]


def deploy_and_resolve(client, token, version):
    """The gate passes on the worker's run; a deploy request is opened, deployed, and resolves."""
    gate = client.api(
        "GET", "/api/v1/prompts/smoke-greeting/versions/1/gate?environment=production", token=token, expect=200
    )
    check(gate["passed"] is True, f"the gate did not pass: {gate}")
    request = client.api(
        "POST", "/api/v1/deploy-requests/",
        {"prompt": "smoke-greeting", "version": 1, "environment": "production", "rationale": "smoke test"},
        token=token, expect=201,
    )
    check(request["status"] != "deployed", f"a Tier-2 request deployed as it was opened: {request}")
    deployed = client.api("POST", f"/api/v1/deploy-requests/{request['id']}/deploy", token=token, expect=200)
    check(deployed["status"] == "deployed", f"deploy request ended {deployed['status']}")
    path = "/api/v1/prompts/smoke-greeting/resolve?environment=production"
    status, headers, data = client.request("GET", path, token=token)
    check(status == 200 and json.loads(data)["version"] == 1, f"resolve: {status}: {data[:500]!r}")
    etag = headers.get("ETag", "")
    check(version["content_hash"] in etag, f"resolve's ETag {etag!r} is not the content hash")
    status, _, _ = client.request("GET", path, token=token, headers={"If-None-Match": etag})
    check(status == 304, f"resolve with If-None-Match answered {status}, not 304")


def webhooks_delivered(receiver, secret):
    wanted = {"deployment.changed", "eval_run.completed"}
    events = wait_for(
        lambda: wanted <= set(receiver.events(secret)) and receiver.events(secret),
        timeout=60,
        what=f"the worker to deliver signed webhooks {sorted(wanted)}",
    )
    check(events["deployment.changed"]["data"].get("environment") == "production", f"{events['deployment.changed']}")
    return sorted(events)


def eval_run(client, token):
    run = client.api(
        "POST", "/api/v1/eval-runs/", {"prompt": "smoke-greeting", "version": 1, "suite": "smoke-core",
                                       "trigger": "ci"},
        token=token, expect=202,
    )

    def finished():
        current = client.api("GET", f"/api/v1/eval-runs/{run['id']}/", token=token, expect=200)
        return current if current["status"] in ("completed", "completed_with_errors", "cancelled", "failed") else None

    done = wait_for(finished, timeout=90, what=f"eval run {run['id']} to be finished by the worker")
    check(done["status"] == "completed" and done["pass_rate"] == 1.0, f"eval run ended {done}")
    return done


def signed_checkpoint(sink):
    return wait_for(
        lambda: sink.exists() and sink.read_text().strip(),
        timeout=60,
        what="beat's heartbeat checkpoint in the audit sink (beat schedules, the worker signs)",
    )


def audit_export(client, token, public_key, workdir):
    status, headers, data = client.request("GET", "/api/v1/audit-events/export?format=jsonl", token=token)
    check(status == 200, f"audit export: {status}: {data[:1000]!r}")
    export = workdir / "audit-export.jsonl"
    export.write_bytes(data)
    records = [json.loads(line) for line in data.splitlines() if line.strip()]
    kinds = [r.get("record") for r in records]
    check(kinds.count("checkpoint") >= 1 and kinds[-1] == "manifest", f"export records: {set(kinds)}")
    actions = {r.get("action") for r in records if r.get("record") == "event"}
    journey = {"user.created", "site_role.granted", "token.issued", "auth.login", "team.created",
               "membership.added", "llm_model.registered", "prompt.created", "version.created",
               "webhook.created", "deployment.changed"}
    check(journey <= actions, f"events missing from the export: {sorted(journey - actions)}")

    # Offline: the system interpreter with no site-packages and no PYTHONPATH, so only the standard
    # library and the verifier are importable (audit/ of the checkout, which finds the SDK's
    # promptledger.verification in sdk/).
    verify = [sys.executable, "-S", "-E", "-m", "audit.verify", str(export), "--public-key", public_key]
    done = subprocess.run(verify, cwd=REPO, capture_output=True, text=True, env={}, check=False)  # noqa: S603
    check(done.returncode == 0 and done.stdout.startswith("OK:"), f"offline verify failed: {done.stdout}{done.stderr}")
    summary = done.stdout.strip()

    # The verifier must also catch a change: one byte of one event, the manifest left as it was.
    tampered = workdir / "audit-export-tampered.jsonl"
    lines = data.decode().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if ADMIN in line and '"record":"event"' in line)
    lines[index] = lines[index].replace(ADMIN, ADMIN[:-1] + "x", 1)
    tampered.write_text("".join(lines))
    verify[5] = str(tampered)
    done = subprocess.run(verify, cwd=REPO, capture_output=True, text=True, env={}, check=False)  # noqa: S603
    check(done.returncode == 1 and "BROKEN" in done.stdout, f"a tampered export passed: {done.stdout}{done.stderr}")
    return summary


def metrics(client, env):
    """/metrics answers with the bearer token and counts what the journey did; without it, 401."""
    status, _, _ = client.request("GET", "/metrics")
    check(status == 401, f"/metrics without its token: {status}, expected 401")
    status, headers, data = client.request("GET", "/metrics", token=env["PROMPTLEDGER_METRICS_TOKEN"])
    check(status == 200, f"/metrics: {status}: {data[:500]!r}")
    check(b"promptledger_" in data, "/metrics has no promptledger_ metric")
    return f"{len(data.splitlines())} lines"


def json_logs(client, stack):
    """Web and worker write JSON lines: a request's access line carries the id sent back to the
    client, and the eval run's task line in the worker carries the id of the request that queued it."""
    status, headers, _ = client.request("GET", "/healthz")
    request_id = headers.get("X-Request-ID", "")
    check(status == 200 and request_id, f"/healthz: {status}, X-Request-ID {request_id!r}")

    def lines(name):
        found = []
        for text in stack.log(name).splitlines():
            if text.startswith("{"):
                try:
                    found.append(json.loads(text))
                except ValueError:
                    continue
        return found

    def access_line():
        return [line for line in lines("web")
                if line.get("logger") == "promptledger.request" and line.get("request_id") == request_id]

    [line] = wait_for(access_line, timeout=10, what="the web's JSON access line of /healthz")
    check(line.get("status") == 200 and "duration_ms" in line and line.get("route"), f"access line: {line}")
    tasks = [line for line in lines("worker")
             if line.get("task") == "evals.tasks.execute_run" and line.get("status") == "success"]
    check(tasks, "the worker wrote no JSON line for the eval run's task")
    queued_by = {line["request_id"] for line in lines("web") if line.get("logger") == "promptledger.request"}
    check(tasks[0].get("request_id") in queued_by,
          f"the run's task line carries request id {tasks[0].get('request_id')!r}, which no web request had")
    return f"access line route {line['route']!r}; run task carried request {tasks[0]['request_id'][:8]}"


def interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="a PostgreSQL server URL")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14", help="a Redis database this test may flush")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (venv, logs, export)")
    args = parser.parse_args(argv)

    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so the processes below are stopped either way.
    signal.signal(signal.SIGTERM, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="promptledger-smoke-"))
    steps, stack, ok = Steps(), None, False
    receiver = WebhookReceiver()
    try:
        steps.run("compose and Dockerfile start processes through run.sh", same_commands_as_compose)
        venv = steps.run("fresh venv + pip install . (as the Dockerfile)", install, workdir)
        database_url = steps.run("PostgreSQL database and Redis db reset", reset_services, args.postgres, args.redis)
        port = free_port()
        env = app_environment(workdir, venv, database_url, args.redis, port)
        stack = Stack(workdir, env)
        steps.run("run.sh release (migrate + collectstatic)", stack.command, RUN, "release")
        steps.run("run.sh check (check --deploy)", stack.command, RUN, "check")
        for process in ("web", "worker", "beat"):
            steps.run(f"start {process} (run.sh {process})", stack.start, process)
        password, token, public_key = steps.run("user, site role and token (manage.py)", create_admin, stack)
        client = Client(port)
        steps.run("/healthz 200 (database and broker)", wait_for, lambda: healthy(client), timeout=60,
                  what="/healthz to answer 200")
        csrf, assets = steps.run("login page and its static files", login_page_and_static, client)
        print(f"[smoke]   static files: {', '.join(assets)}")
        steps.run("sign in (session, CSRF)", sign_in, client, csrf, password)
        version = steps.run("team, model, prompt, version, suite, cases (API)", registry_objects, client, token)
        secret = steps.run("webhook subscription to a local receiver", webhook_subscription, client, token, receiver)
        run = steps.run("eval run finished by the worker", eval_run, client, token)
        print(f"[smoke]   run {run['id']}: {run['status']}, pass rate {run['pass_rate']}")
        steps.run("gate passed, deploy request deployed, resolve", deploy_and_resolve, client, token, version)
        events = steps.run("signed webhooks delivered by the worker", webhooks_delivered, receiver, secret)
        print(f"[smoke]   webhooks: {', '.join(events)}")
        steps.run("signed checkpoint from beat", signed_checkpoint, Path(env["PROMPTLEDGER_AUDIT_SINK"]))
        summary = steps.run("audit export verified offline (and a tampered copy refused)", audit_export, client,
                            token, public_key, workdir)
        print(f"[smoke]   {summary}")
        verified = steps.run("manage.py verify_audit (database and sink)", stack.manage, "verify_audit")
        print(f"[smoke]   {verified.strip().splitlines()[-1] if verified.strip() else ''}")
        print(f"[smoke]   /metrics: {steps.run('/metrics, with and without its token', metrics, client, env)}")
        print(f"[smoke]   logs: {steps.run('JSON logs with request ids (web and worker)', json_logs, client, stack)}")
        steps.run("all processes still running", stack.check_alive)
        ok = True
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - any failure is reported, then cleaned up
        if not isinstance(exc, SmokeFailure | KeyboardInterrupt):
            traceback.print_exc(file=sys.stdout)
        print(f"\n[smoke] FAILED: {exc}", flush=True)
        if stack:
            stack.print_logs()
    finally:
        receiver.close()
        if stack:
            steps.run("stop every process", stack.stop)
        steps.report()
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"[smoke] kept {workdir} (venv, process logs, export)", flush=True)
    passed = sum(outcome == "ok" for _, _, outcome in steps.timings)
    print(f"smoke: {passed} passed, {len(steps.timings) - passed} failed", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

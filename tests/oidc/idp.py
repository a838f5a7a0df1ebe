"""The test OpenID provider (tests/oidc/provider.mjs, node's oidc-provider) as a Python object:
started on a free loopback port, its users changed while it runs, and a person's way through its
login and consent pages walked over HTTP (``sign_in``) for tests that do not need a browser."""

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import requests

from tests.conftest import need_service

HERE = Path(__file__).resolve().parent
CLIENT_ID, CLIENT_SECRET = "promptledger", "test-client-secret-of-promptledger-0123456789"
OTHER_CLIENT_ID = "another-app"
PASSWORD = "idp-password-1"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TestProvider:
    __test__ = False  # not a test class

    def __init__(self, workdir, redirect_uris, users):
        node = shutil.which("node")
        need_service("node", node, "install Node.js 18, 20 or 22")
        need_service(
            "the oidc-provider npm package", (HERE / "node_modules" / "oidc-provider" / "package.json").exists(),
            "npm ci --prefix tests/oidc",
        )
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.users = users
        state = {
            "port": self.port,
            "clients": [
                {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris},
                {"client_id": OTHER_CLIENT_ID, "client_secret": CLIENT_SECRET + "-other",
                 "redirect_uris": ["http://other.invalid/callback"]},
            ],
            "users": users,
        }
        path = Path(workdir) / "idp-state.json"
        path.write_text(json.dumps(state))
        self.log = open(Path(workdir) / "idp.log", "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [node, str(HERE / "provider.mjs"), str(path)], stdout=self.log, stderr=subprocess.STDOUT,
            cwd=HERE, env={**os.environ, "NODE_ENV": "test"},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the test IdP exited: {self.output()}")
            try:
                requests.get(self.issuer + "/.well-known/openid-configuration", timeout=1).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the test IdP did not start in 20 s: {self.output()}")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def set_users(self, users=None, **changes):
        """Replace the users (and e.g. ``id_token_ttl``) while the provider runs."""
        if users is not None:
            self.users = users
        response = requests.post(self.issuer + "/__test__/state", json={"users": self.users, **changes}, timeout=5)
        response.raise_for_status()

    def update_user(self, login, **fields):
        self.users = {**self.users, login: {**self.users[login], **fields}}
        self.set_users()


def follow_to_callback(session, url, *, login=None, password=PASSWORD, callback_prefix):
    """Walk the IdP from an authorization URL: fill the login page (when asked) and allow the
    consent page, until the IdP redirects to ``callback_prefix``; that URL is returned."""
    for _ in range(10):
        response = session.get(url, allow_redirects=False, timeout=10)
        while response.status_code in (302, 303):
            location = urljoin(url, response.headers["Location"])
            if location.startswith(callback_prefix):
                return location
            url = location
            response = session.get(url, allow_redirects=False, timeout=10)
        body = response.text
        if 'name="login"' in body:
            if login is None:
                raise AssertionError("the IdP asked for a login and none was given")
            action = re.search(r'action="([^"]+/login)"', body).group(1)
            response = session.post(urljoin(url, action), data={"login": login, "password": password},
                                    allow_redirects=False, timeout=10)
        elif "/confirm" in body:
            action = re.search(r'action="([^"]+/confirm)"', body).group(1)
            response = session.post(urljoin(url, action), allow_redirects=False, timeout=10)
        else:
            raise AssertionError(f"unexpected IdP page ({response.status_code}): {body[:300]}")
        if response.status_code not in (302, 303):
            raise AssertionError(f"the IdP refused ({response.status_code}): {response.text[:300]}")
        url = urljoin(url, response.headers["Location"])
        if url.startswith(callback_prefix):
            return url
    raise AssertionError("the IdP never redirected back")


def query_of(url):
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}

"""Fixtures for the SDK's own tests, which need neither Django nor the server's code: the installed
``promptledger`` console script run in a process of its own, an address where nothing listens, and
a server that accepts connections and never answers."""

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

CONSOLE_SCRIPT = Path(sys.executable).with_name("promptledger")


@pytest.fixture
def environment(tmp_path):
    """This process's environment for a child process: without Promptledger's or Django's
    settings, and with a cache folder of the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTLEDGER_", "DJANGO_"))}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache")
    return env


@pytest.fixture
def cli(tmp_path, environment):
    """``cli(*args, url=None, token=None)``: the installed console script, run from the test's own
    folder (so nothing is imported from a source tree by accident)."""

    def run(*args, url=None, token=None, timeout=120):
        env = dict(environment)
        if url is not None:
            env["PROMPTLEDGER_URL"] = url
        if token is not None:
            env["PROMPTLEDGER_TOKEN"] = token
        return subprocess.run(  # noqa: S603 - the installed console script, fixed arguments
            [str(CONSOLE_SCRIPT), *map(str, args)], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def closed_url():
    """The URL of a port that was free a moment ago: nothing listens there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class SilentServer:
    """A socket that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()

"""One POST to a receiver (``webhooks.sending``), for webhook deliveries and audit streams alike:
a receiver that drips its answer a byte at a time, each byte well within the read timeout, is cut
off at the attempt's timeout in all, and a delivery records it as a timeout to retry."""

import socket
import threading
import time

import pytest

from webhooks import audit_stream, delivery
from webhooks.sending import post_once


class Dripper:
    """A TCP server that reads a request's head, then answers one byte every ``every`` seconds,
    never finishing its status line and headers."""

    def __init__(self, every=0.1):
        self.every, self.stopping = every, threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        with conn:
            conn.recv(65536)
            answer = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"." * 10_000
            for byte in answer:
                if self.stopping.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return  # the sender gave up and closed its end
                time.sleep(self.every)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=2)
        self.server.close()


@pytest.fixture
def dripper():
    server = Dripper()
    yield server
    server.stop()


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_timeout_in_all(dripper):
    started = time.monotonic()
    answer = post_once(dripper.url, b"{}", {"Content-Type": "application/json"}, timeout=1.0)
    took = time.monotonic() - started
    assert (answer.status, answer.error) == (None, "timed out after 1 s")
    # Each byte came within the 1 s read timeout, so only the deadline stops it: without one the
    # answer would drip for about 1,000 s. The upper bound leaves a loaded machine room.
    assert 1.0 <= took < 10.0


def test_a_webhook_delivery_and_an_audit_stream_both_send_through_it(dripper, settings):
    settings.PROMPTLEDGER_WEBHOOK_TIMEOUT = 0.5
    settings.PROMPTLEDGER_AUDIT_STREAM_TIMEOUT = 0.5

    class Subscription:
        url = dripper.url

        def signing_secret(self):
            return "s" * 32

    class Delivery:
        event, body, uuid = "test.event", "{}", "00000000-0000-0000-0000-000000000000"

    class Stream:
        url = dripper.url

    started = time.monotonic()
    assert delivery._post(Delivery(), Subscription()) == (None, "timed out after 0.5 s")
    assert audit_stream.post(Stream(), b"{}\n", {}) == (None, "timed out after 0.5 s", None)
    assert time.monotonic() - started < 10.0  # two deadlines of 0.5 s, not the drip's 1,000 s


def test_an_answer_in_time_passes_through_with_its_status(receiver):
    ok = post_once(receiver.url, b"{}", {"Content-Type": "application/json"}, timeout=5.0)
    assert (ok.status, ok.error) == (204, "")
    receiver.status = 503
    failed = post_once(receiver.url, b"{}", {"Content-Type": "application/json"}, timeout=5.0)
    assert (failed.status, failed.error) == (503, "HTTP 503")
    assert len(receiver.requests) == 2

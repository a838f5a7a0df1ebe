"""A real HTTP receiver standing in for a SIEM, on a local port: it records each POST (headers, raw
body), answers ``status`` (with ``Retry-After`` when set), and can go down (connections refused) and
come back on the same port. ``events()`` is its copy of the audit trail: the event lines of every
batch it acknowledged, in arrival order, from JSON lines or Splunk HEC bodies alike."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SiemReceiver:
    def __init__(self, status=200, retry_after=None, delay=0.0):
        self.status, self.retry_after, self.delay = status, retry_after, delay
        self.requests = []  # every POST: {"headers", "body", "status"}
        self.in_flight = self.most_in_flight = 0  # POSTs being answered at once, now and at most
        self.changed = threading.Condition()
        self.server = self.thread = None
        self.port = 0
        self.start()

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.changed:
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                if receiver.delay:
                    threading.Event().wait(receiver.delay)  # a slow receiver, on purpose
                status = receiver.status
                with receiver.changed:
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "status": status})
                    receiver.in_flight -= 1
                    receiver.changed.notify_all()
                self.send_response(status)
                if receiver.retry_after is not None and status >= 300:
                    self.send_header("Retry-After", str(receiver.retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/services/collector?channel=siem-token-in-url"

    def stop(self):
        """Down: nothing listens on the port any more (connections are refused)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)
            self.server = None

    def acknowledged(self):
        with self.changed:
            return [r for r in self.requests if 200 <= r["status"] < 300]

    def event_lines(self):
        """The audit event lines of every acknowledged batch, in arrival order (duplicates kept)."""
        lines = []
        for request in self.acknowledged():
            for raw in request["body"].decode("utf-8").splitlines():
                item = json.loads(raw)
                if "event" in item and isinstance(item["event"], dict):  # Splunk HEC
                    lines.append(json.dumps(item["event"], ensure_ascii=False, separators=(",", ":")))
                else:
                    lines.append(raw)
        return lines

    def copy(self):
        """The SIEM's copy: event lines de-duplicated by sequence (first arrival kept), in arrival order."""
        seen, kept = set(), []
        for line in self.event_lines():
            sequence = json.loads(line)["sequence"]
            if sequence not in seen:
                seen.add(sequence)
                kept.append(line)
        return kept

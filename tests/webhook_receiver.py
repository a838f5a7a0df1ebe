"""A real HTTP receiver for webhook tests, on a local port: it records each POST (path, headers,
raw body), answers ``status`` after ``delay`` seconds, and can go down and come back on the same
port."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Records each POST (path, headers, raw body) and answers ``status`` after ``delay`` seconds."""

    def __init__(self, status=204, delay=0.0, port=0):
        self.status, self.delay, self.requests = status, delay, []
        self.changed = threading.Condition()
        self.server = self.thread = None
        self.port = port
        self.start()

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    threading.Event().wait(receiver.delay)  # a slow receiver, on purpose
                with receiver.changed:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    receiver.changed.notify_all()
                self.send_response(receiver.status)
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
        return f"http://127.0.0.1:{self.port}/hooks/promptledger?token=url-token-123"

    def stop(self):
        """Down: nothing listens on the port any more (connections are refused)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)
            self.server = None

    def wait_for(self, count, timeout=15):
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} webhook(s) within {timeout}s, got {len(self.requests)}")
            return list(self.requests)

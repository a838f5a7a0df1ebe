"""A local HTTP server speaking OpenAI's ``POST /v1/chat/completions`` and Anthropic's
``POST /v1/messages`` wire formats, so tests (and benchmarks) drive the real SDKs without the
internet.

Scriptable: ``server.script(ok("hi"), rate_limited(0.2), server_error(), hang(5), drop(), ...)`` queues one
behaviour per request, in arrival order, whichever API is asked; with the queue empty it answers
with the last user message after ``delay`` seconds. It records every request (path, headers, JSON
body) and the most requests it ever had in flight. Threaded (one thread per connection, HTTP/1.1
keep-alive, a deep listen backlog), so 64+ concurrent slow requests are served side by side; a
sleeping request wakes when the server stops. Standard library only, so it also runs as a script:

    python tests/evals/fake_provider.py --port 9100 --delay-ms 200
"""

import argparse
import itertools
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
_ERROR_TYPES = {  # status -> (OpenAI error type, Anthropic error type)
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("invalid_request_error", "authentication_error"),
    403: ("invalid_request_error", "permission_error"),
    404: ("invalid_request_error", "not_found_error"),
    429: ("rate_limit_error", "rate_limit_error"),
    500: ("server_error", "api_error"),
    503: ("server_error", "api_error"),
    529: ("server_error", "overloaded_error"),
}


@dataclass
class Behaviour:
    """How to answer one request: after ``delay`` seconds, ``status`` with ``text`` (None: echo the
    last user message) or an error ``message``, and extra ``headers``."""

    status: int = 200
    text: str | None = None
    delay: float = 0.0
    message: str = ""
    headers: dict = field(default_factory=dict)
    input_tokens: int | None = None
    output_tokens: int | None = None


def ok(text=None, *, delay=0.0, input_tokens=None, output_tokens=None):
    return Behaviour(text=text, delay=delay, input_tokens=input_tokens, output_tokens=output_tokens)


def error(status, message="fake failure", *, retry_after=None, delay=0.0):
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Behaviour(status=status, message=message, headers=headers, delay=delay)


def rate_limited(retry_after=0.2, message="Rate limit reached, slow down"):
    return error(429, message, retry_after=retry_after)


def server_error(status=500, message="The server had an error while processing your request"):
    return error(status, message)


def drop():
    """Close the connection without answering, as a provider (or a proxy) that went away mid-request."""
    return Behaviour(status=0)


def hang(seconds=30.0):
    """Answer (too late) after ``seconds``: longer than the client's timeout, it is a timeout."""
    return Behaviour(delay=seconds)


@dataclass
class Received:
    path: str
    headers: dict  # lower-cased names
    body: dict
    at: float  # time.monotonic() on arrival


def _last_user_text(messages):
    for message in reversed(messages or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


def _tokens(text):
    return max(1, (len(text) + 3) // 4)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One buffered write per answer (flushed in _send_json), sent at once: written as two small
    # segments with Nagle on, the body waits for the client's delayed ACK (~40 ms an answer).
    wbufsize = -1
    disable_nagle_algorithm = True
    server: "_Server"

    def setup(self):
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self):
        self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        fake = self.server.fake
        path = self.path.split("?", 1)[0]
        fake.record(Received(path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
        if path not in (OPENAI_PATH, ANTHROPIC_PATH):
            self._send_json(404, {"error": {"message": f"no route {path}", "type": "not_found_error"}})
            return
        behaviour = fake.next_behaviour()
        fake.enter()
        try:
            if behaviour.delay > 0 and fake.stopping.wait(behaviour.delay):
                return  # stopping: drop the request
            anthropic = path == ANTHROPIC_PATH
            if behaviour.status == 0:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif behaviour.status >= 400:
                self._send_json(behaviour.status, _error_body(behaviour, anthropic), behaviour.headers)
            else:
                self._send_json(200, _answer_body(behaviour, body, anthropic, fake.next_id()), behaviour.headers)
        except OSError:  # the client gave up (a timeout) and closed the connection
            pass
        finally:
            fake.leave()

    def _send_json(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _error_body(behaviour, anthropic):
    openai_type, anthropic_type = _ERROR_TYPES.get(behaviour.status, ("server_error", "api_error"))
    if anthropic:
        return {"type": "error", "error": {"type": anthropic_type, "message": behaviour.message}}
    return {"error": {"message": behaviour.message, "type": openai_type, "param": None, "code": None}}


def _answer_body(behaviour, request, anthropic, number):
    messages = request.get("messages") or []
    text = behaviour.text if behaviour.text is not None else _last_user_text(messages)
    prompt = json.dumps(messages) + str(request.get("system") or "")
    input_tokens = behaviour.input_tokens if behaviour.input_tokens is not None else _tokens(prompt)
    output_tokens = behaviour.output_tokens if behaviour.output_tokens is not None else _tokens(text)
    model = request.get("model", "unknown")
    if anthropic:
        return {
            "id": f"msg_fake{number:08d}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    return {
        "id": f"chatcmpl-fake{number:08d}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
                  "total_tokens": input_tokens + output_tokens},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, address, fake):
        self.fake = fake
        self.connections = set()
        super().__init__(address, _Handler)


class FakeProvider:
    """The server, its script and its record. ``delay`` (seconds) applies when the script is empty."""

    def __init__(self, host="127.0.0.1", port=0, delay=0.0):
        self.delay = delay
        self.requests: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self._script = deque()
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._server = _Server((host, port), self)
        self._thread = None

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self):
        return self.url + "/v1"

    @property
    def anthropic_base_url(self):
        return self.url

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self._server.shutdown()
        for connection in list(self._server.connections):  # idle keep-alive connections
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()

    def serve_forever(self):
        self._server.serve_forever()

    # The script and the record, shared with handler threads.
    def script(self, *behaviours):
        with self._changed:
            self._script.extend(behaviours)
        return self

    def next_behaviour(self):
        with self._changed:
            return self._script.popleft() if self._script else Behaviour(delay=self.delay)

    def next_id(self):
        return next(self._ids)

    def record(self, received):
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()

    def enter(self):
        with self._changed:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self):
        with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def wait_for(self, predicate, timeout=5.0):
        """Wait until ``predicate(self)`` holds (checked on every request and answer); False at the deadline."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer every request after this long")
    args = parser.parse_args(argv)
    fake = FakeProvider(args.host, args.port, delay=args.delay_ms / 1000)
    print(f"fake provider on {fake.url}: OPENAI_BASE_URL={fake.openai_base_url} "
          f"ANTHROPIC_BASE_URL={fake.anthropic_base_url} (any API key)", flush=True)
    try:
        fake.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stopping.set()
        fake._server.server_close()


if __name__ == "__main__":
    main()

"""The benchmarks' stand-in for a model provider: OpenAI's ``POST /v1/chat/completions`` and
Anthropic's ``POST /v1/messages``, answering every request with its last user message after a fixed
delay, on one asyncio event loop.

It answers exactly what ``tests/evals/fake_provider.py`` answers with an empty script (the same
body builder, imported from there), but costs the machine far less per request than that threaded
server, so that on a small machine the time a benchmark measures is the app's rather than its
provider's: a request is parsed from the socket's bytes as they arrive, the answer goes out in one
write once the delay is over, connections are kept alive (HTTP/1.1), and nothing else runs.

    python bench/provider_server.py --port 9100 --delay-ms 200
"""

import argparse
import asyncio
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.evals.fake_provider import ANTHROPIC_PATH, OPENAI_PATH, Behaviour, _answer_body  # noqa: E402

MAX_HEAD = 64 * 1024
MAX_BODY = 8 * 1024 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large"}


def _response(status, payload, keep_alive):
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


class _Connection(asyncio.Protocol):
    """One client connection: requests one after another (no pipelining), each answered after the delay."""

    def __init__(self, server):
        self.server, self.buffer, self.transport, self.busy = server, bytearray(), None, False

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.transport = None

    def data_received(self, data):
        self.buffer += data
        if not self.busy:
            self._next_request()

    def _next_request(self):
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._answer(400, {"error": {"message": "request head too large"}}, keep_alive=False)
            return
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        try:
            method, target, _version = lines[0].split(" ", 2)
            length = int(headers.get("content-length") or 0)
        except ValueError:
            self._answer(400, {"error": {"message": "malformed request"}}, keep_alive=False)
            return
        if length > MAX_BODY:
            self._answer(413, {"error": {"message": "body too large"}}, keep_alive=False)
            return
        if len(self.buffer) < end + 4 + length:
            return  # the body is still arriving
        raw = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        keep_alive = headers.get("connection", "").lower() != "close"
        path = target.split("?", 1)[0]
        if method != "POST" or path not in (OPENAI_PATH, ANTHROPIC_PATH):
            self._answer(404, {"error": {"message": f"no route {method} {path}", "type": "not_found_error"}},
                         keep_alive)
            return
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            request = {}
        self.busy = True
        answer = _answer_body(Behaviour(), request, path == ANTHROPIC_PATH, next(self.server.ids))
        asyncio.get_running_loop().call_later(self.server.delay, self._answer, 200, answer, keep_alive)

    def _answer(self, status, payload, keep_alive):
        self.busy = False
        if self.transport is None:
            return  # the client gave up
        self.transport.write(_response(status, payload, keep_alive))
        if not keep_alive:
            self.transport.close()
            return
        if self.buffer:
            self._next_request()


class ProviderServer:
    def __init__(self, delay):
        self.delay, self.ids = delay, itertools.count(1)

    async def serve(self, host, port):
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(self), host, port, backlog=512, reuse_address=True)
        print(f"fake provider on http://{host}:{port}: OPENAI_BASE_URL=http://{host}:{port}/v1 "
              f"ANTHROPIC_BASE_URL=http://{host}:{port} (any API key)", flush=True)
        async with server:
            await server.serve_forever()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer every request after this long")
    args = parser.parse_args(argv)
    try:
        asyncio.run(ProviderServer(args.delay_ms / 1000).serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

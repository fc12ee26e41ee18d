"""A real local HTTP server speaking the OpenAI chat-completions protocol, for tests.

Its behaviour is scripted per test: answer with fixed text (or a dict with ``content`` and a ``logprobs``
block), fail N times with an HTTP status first, or answer slowly. It binds to 127.0.0.1 on a free port and runs in a background thread.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(
        self, reply: str = "<reason>One cat, centered in the frame.</reason><prompt>A cat.</prompt>"
    ) -> None:
        self.reply = reply
        self.fail_first = 0
        self.fail_status = 503
        self.delay = 0.0
        self.models = ["fake-model"]  # listed by GET /v1/models
        self.requests: list[dict] = []
        self.headers: list = []  # http.client.HTTPMessage per request
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802 (GET /v1/models, as OpenAI-compatible servers list models)
                if not self.path.rstrip("/").endswith("/models"):
                    self.send_response(404)
                    self.end_headers()
                    return
                out = json.dumps(
                    {"object": "list", "data": [{"id": m, "object": "model"} for m in owner.models]}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out.encode())

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(body)
                owner.headers.append(self.headers)  # case-insensitive, as HTTP headers are
                if owner.delay:
                    time.sleep(owner.delay)
                if owner.fail_first > 0:
                    owner.fail_first -= 1
                    self.send_response(owner.fail_status)
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted failure"}')
                    return
                reply = owner.reply(body) if callable(owner.reply) else owner.reply
                n = body.get("n", 1)
                texts = reply if isinstance(reply, list) else [reply] * n  # a list: one text per choice
                # a dict reply: {"content": text, "logprobs": the choice's logprobs block}
                data = {
                    "choices": [
                        {
                            "index": i,
                            "message": {
                                "role": "assistant",
                                "content": t["content"] if isinstance(t, dict) else t,
                            },
                            **(
                                {"logprobs": t["logprobs"]} if isinstance(t, dict) and "logprobs" in t else {}
                            ),
                        }
                        for i, t in enumerate(texts)
                    ],
                    "usage": {"completion_tokens": 7 * n},
                }
                out = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

"""Fake provider APIs for the sender tests: real servers on 127.0.0.1, answering as the real ones document.

FakeHttpApi is the shared part: a ThreadingHTTPServer on a free loopback port, run in a
thread, recording every request with the time it arrived. Each connection has a thread of its
own, so the fake serves many requests at once; delay makes every answer take that long, like
a provider on the far side of the internet. Each fake decides its answers in respond().
"""

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

JsonBody = dict[str, object]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0  # time.monotonic() when the request had arrived
    first_on_connection: bool = True  # its arrival time includes connecting and the fake's thread start

    def json(self) -> JsonBody:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}


@dataclass
class Reply:
    status: int
    body: JsonBody
    headers: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        arrived = time.monotonic()
        first = not getattr(self, "_served_one", False)
        self._served_one = True
        length = int(self.headers.get("Content-Length") or 0)
        request = RecordedRequest(method=self.command, path=urlsplit(self.path).path,
                                  headers={k.lower(): v for k, v in self.headers.items()},
                                  body=self.rfile.read(length) if length else b"", at=arrived,
                                  first_on_connection=first)
        fake = self.server.fake
        with fake.lock:
            fake.requests.append(request)
        reply = fake.respond(request)
        if fake.delay:
            time.sleep(fake.delay)
        payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (timeout tests)
            self.close_connection = True

    do_GET = do_POST = _handle

    def log_message(self, format: str, *args: object) -> None:  # quiet: the path may hold a token
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients connect at once; the default backlog of 5 would drop some
    fake: "FakeHttpApi"


class FakeHttpApi:
    """Base of the fakes: start() / stop() or use as a context manager; base_url, requests."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds to wait before answering, to provoke client timeouts
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def respond(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def start(self) -> "FakeHttpApi":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


HOSTILE_HEADLINE = '<script>alert(1)</script> & "Q"'
ESCAPED_HEADLINE = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Q&quot;"


def outgoing(**overrides: object):  # noqa: ANN201 - an OutgoingMessage
    """An OutgoingMessage with plausible defaults; override any field."""
    from alerts.render import OutgoingMessage

    fields: dict[str, object] = dict(
        delivery_id=42, user_id=7, channel="email", destination="trader@example.com",
        subject="[HIGH_IMPACT_EVENT 4/5] Pipeline outage", body="Pipeline outage\n\nDetails\n",
        alert_event_id=3, attempt=1, alert_type="HIGH_IMPACT_EVENT", severity=4, region="europe",
        assets=("gas", "oil"), headline="Pipeline outage in the North Sea",
        event_body="Flows stopped at 06:00 UTC.\nRepairs expected within 48 hours.",
    )
    fields.update(overrides)
    return OutgoingMessage(**fields)  # type: ignore[arg-type]

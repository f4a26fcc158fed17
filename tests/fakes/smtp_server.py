"""A real SMTP server for the tests (aiosmtpd on 127.0.0.1) that records what it receives.

refuse[address] = "451 4.7.1 ..." or "550 5.1.1 ..." answers RCPT TO for that address;
defer_share answers 451 to that share of messages the first time their Message-ID is seen
(chosen by a hash of it, so the same ones every run);
drop_after_data closes the connection right after a message is accepted, like a server
that hangs up on idle clients; data_delay seconds pass between receiving a message and
answering 250 (data_started is set when the first one arrives), like a slow relay or a
provider far away; sessions are served concurrently, each waits on its own.
Optional AUTH (users: login -> password), STARTTLS (tls_context) or implicit TLS (smtps_context).
"""

import asyncio
import hashlib
import re
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.fakes import free_port


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    peer: tuple[str, int]
    tls: bool
    raw: bytes
    at: float = 0.0  # time.monotonic() when its DATA arrived
    started_at: float = 0.0  # time.monotonic() of its MAIL FROM: when the client began to send it

    @property
    def email(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def part(self, content_type: str) -> str:
        body = self.email.get_body(preferencelist=(content_type.split("/")[1],))
        assert body is not None and body.get_content_type() == content_type
        return str(body.get_content())


@dataclass
class RecordingHandler:
    refuse: dict[str, str] = field(default_factory=dict)
    drop_after_data: bool = False
    data_delay: float = 0.0
    defer_share: float = 0.0
    data_started: threading.Event = field(default_factory=threading.Event)
    messages: list[ReceivedMessage] = field(default_factory=list)
    auth_attempts: list[str] = field(default_factory=list)
    rcpt_attempts: list[str] = field(default_factory=list)  # every RCPT TO address, refused or not
    deferred: set[str] = field(default_factory=set)  # Message-IDs answered 451
    in_flight: int = 0  # messages whose DATA is being answered right now
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        session.mail_started_at = time.monotonic()  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        self.rcpt_attempts.append(address)  # the event loop's thread only
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or b"")
        deferred = self.defer_share and self._defer_once(raw)
        if not deferred:
            received = ReceivedMessage(mail_from=str(envelope.mail_from), rcpt_tos=tuple(envelope.rcpt_tos),
                                       peer=tuple(session.peer), tls=_encrypted(server), raw=raw,
                                       at=time.monotonic(), started_at=getattr(session, "mail_started_at", 0.0))
            with self.lock:
                self.messages.append(received)
        self.data_started.set()
        self.in_flight += 1  # the event loop's thread only: no lock needed
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.data_delay:
                await asyncio.sleep(self.data_delay)
        finally:
            self.in_flight -= 1
        if deferred:
            return "451 4.3.0 Temporary failure, try again later"
        if self.drop_after_data and server.transport is not None:
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 2.0.0 Message accepted for delivery"


    def _defer_once(self, raw: bytes) -> bool:
        message_id = message_id_of(raw)
        if int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:4]) % 10_000 >= self.defer_share * 10_000:
            return False
        with self.lock:
            if message_id in self.deferred:
                return False
            self.deferred.add(message_id)
            return True


_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


def message_id_of(raw: bytes) -> str:
    """The Message-ID header of a raw message, without parsing the rest of it."""
    found = _MESSAGE_ID.search(raw)
    return found.group(1).decode() if found else ""


def _encrypted(server: SMTP) -> bool:
    return server.transport is not None and server.transport.get_extra_info("ssl_object") is not None


@dataclass
class Authenticator:
    users: dict[str, str]
    handler: RecordingHandler

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: object) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        self.handler.auth_attempts.append(login)
        return AuthResult(success=self.users.get(login) == auth_data.password.decode(), handled=False)


class FakeSmtpServer:
    """Context manager: an aiosmtpd Controller on a free loopback port."""

    def __init__(self, users: dict[str, str] | None = None, tls_context: ssl.SSLContext | None = None,
                 smtps_context: ssl.SSLContext | None = None) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        kwargs: dict[str, object] = {}
        if users is not None:
            kwargs.update(authenticator=Authenticator(users, self.handler), auth_require_tls=False)
        if tls_context is not None:
            kwargs["tls_context"] = tls_context
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     ssl_context=smtps_context, **kwargs)

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.handler.messages

    def __enter__(self) -> "FakeSmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.controller.stop()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(cert, key) for 127.0.0.1 and localhost, made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context

"""Email over SMTP with the standard library: SMTP_URL and EMAIL_FROM.

SMTP_URL forms (percent-encode special characters in user and password, e.g. @ as %40):

    smtp://[user[:password]@]host[:port]    port 587 by default; STARTTLS when the server offers it
    smtps://[user[:password]@]host[:port]   port 465 by default; TLS from the first byte

Query flags:

    starttls=auto      (default, smtp:// only) upgrade with STARTTLS when the server offers it
    starttls=require   (smtp:// only) never send without STARTTLS: a server that does not offer it
                       fails the send (transient), so a stripped STARTTLS cannot downgrade us
    starttls=never     (smtp:// only) plain connection, e.g. a local relay
    timeout=SECONDS    socket timeout, default 20

Whatever the flags say, a password is only ever sent over TLS or to a loopback host.
Certificates are verified against the system store; SSL_CERT_FILE adds a private CA.

A pool of connections serves the run, one per message in flight (send() is called from
several threads): each is checked with NOOP before reuse, and a connection that failed is
closed and replaced by a new one. Outcomes: accepted -> SENT with the Message-ID as the
provider id; 4xx replies, connection errors and timeouts -> TRANSIENT; 5xx replies to the
message (e.g. 550 recipient refused) -> PERMANENT. Failures while connecting, in STARTTLS
or in login (e.g. 535 wrong password) are about the server or our settings, not the
message: TRANSIENT, so the rows go out once the settings are fixed.
"""

import ipaddress
import logging
import smtplib
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit

from alerts import templates
from alerts.destinations import destination_problem
from alerts.errors import UsageError
from alerts.render import OutgoingMessage
from alerts.secrets import mask_url
from alerts.senders.base import SendResult
from alerts.senders.provider import Provider, entry_points

log = logging.getLogger("alerts.senders.smtp")

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
STARTTLS_MODES = ("auto", "require", "never")
DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class EmailFrom:
    """EMAIL_FROM parsed: 'Alerts <alerts@example.com>' or 'alerts@example.com'."""

    name: str
    address: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def header(self) -> str:
        return str(Address(display_name=self.name, addr_spec=self.address)) if self.name else self.address


@dataclass(frozen=True)
class SmtpConfig:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    starttls: str
    timeout: float
    email_from: EmailFrom
    masked_url: str

    def describe(self) -> str:
        tls = {"smtps": "implicit TLS"}.get(self.scheme, f"STARTTLS {self.starttls}")
        return f"email via SMTP {self.masked_url} ({tls}) from {self.email_from.address}"


class SmtpSetupError(Exception):
    """The connection could not be set up the way SMTP_URL asks (no STARTTLS, password in clear)."""


def parse_email_from(env: Mapping[str, str], needed_by: str) -> EmailFrom:
    raw = env.get("EMAIL_FROM", "").strip()
    if not raw:
        raise UsageError(f"EMAIL_FROM is not set but {needed_by} is: set EMAIL_FROM=alerts@your-domain.example")
    name, address = parseaddr(raw)
    if destination_problem("email", address) is not None:
        raise UsageError(f"EMAIL_FROM={raw!r} is not an email address: use alerts@your-domain.example "
                         "or 'Alerts <alerts@your-domain.example>'")
    return EmailFrom(name=name, address=address)


def _query_flags(url: str, scheme: str) -> tuple[str, float]:
    flags = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    unknown = sorted(set(flags) - {"starttls", "timeout"})
    if unknown:
        raise UsageError(f"SMTP_URL={mask_url(url)}: unknown query flag {unknown[0]!r}; "
                         "known flags are starttls=auto|require|never and timeout=SECONDS")
    starttls = flags.get("starttls", "auto")
    if starttls not in STARTTLS_MODES or (scheme == "smtps" and "starttls" in flags):
        raise UsageError(f"SMTP_URL={mask_url(url)}: starttls must be auto, require or never, "
                         "and only with smtp:// (smtps:// is TLS from the start)")
    try:
        timeout = float(flags.get("timeout", DEFAULT_TIMEOUT))
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= 600:
        raise UsageError(f"SMTP_URL={mask_url(url)}: timeout must be a number of seconds between 0 and 600")
    return starttls, timeout


def parse_config(env: Mapping[str, str]) -> SmtpConfig | None:
    """SMTP settings from env; None when SMTP_URL is not set; UsageError when malformed."""
    url = env.get("SMTP_URL", "").strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UsageError(f"SMTP_URL={mask_url(url)} is not a valid URL: "
                         "use smtp://user:password@host:587 or smtps://user:password@host:465") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise UsageError(f"SMTP_URL={mask_url(url)} must look like smtp://user:password@host:587 "
                         "or smtps://user:password@host:465")
    if parts.path not in ("", "/"):
        raise UsageError(f"SMTP_URL={mask_url(url)} must not have a path: use smtp://user:password@host:port")
    starttls, timeout = _query_flags(url, scheme)
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpConfig(scheme=scheme, host=parts.hostname, port=port or DEFAULT_PORTS[scheme],
                      username=unquote(parts.username) if parts.username else None, password=password,
                      starttls=starttls, timeout=timeout, email_from=parse_email_from(env, "SMTP_URL"),
                      masked_url=mask_url(url))


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def local_hostname() -> str:
    return socket.getfqdn() or "localhost"


def build_email(message: OutgoingMessage, email_from: EmailFrom) -> EmailMessage:
    """text/plain + text/html alternative with a Message-ID derived from the delivery id."""
    email = EmailMessage()
    email["Subject"] = templates.email_subject(message)
    email["From"] = email_from.header()
    email["To"] = message.destination
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = templates.email_message_id(message.delivery_id, email_from.domain, message.kind)
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    email.set_content(templates.email_text(message))
    email.add_alternative(templates.email_html(message), subtype="html")
    return email


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def classify_reply(code: int, reply: bytes | str, what: str) -> tuple[bool, str]:
    """(permanent?, error) for an SMTP reply to the message: 5xx permanent, anything else transient."""
    return 500 <= code <= 599, f"SMTP {code} {_reply_text(reply)} ({what})"


class SmtpEmailSender(Provider):
    """A pool of SMTP connections, one per message in flight; see the module docstring for the outcomes."""

    name = "smtp"
    channel = "email"

    def __init__(self, config: SmtpConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.secret = config.password
        self._ssl_context = ssl_context
        self._idle: list[smtplib.SMTP] = []  # the most recently used first out: the likeliest to be alive
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SmtpEmailSender({self.config.masked_url})"

    def transmit(self, message: OutgoingMessage) -> SendResult:
        try:
            email = build_email(message, self.config.email_from)
        except ValueError as error:  # a header the email package refuses, e.g. a line break
            return self.failed(message, permanent=True, error=f"cannot build the email: {error}")
        try:
            smtp = self._checkout()
        except (smtplib.SMTPException, OSError, SmtpSetupError) as error:
            return self.unreachable(message, self._setup_error(error))
        result, reusable = self._transmit(smtp, email, message)
        if reusable:
            with self._lock:
                self._idle.append(smtp)
        else:
            _quietly_close(smtp)
        return result

    def _transmit(self, smtp: smtplib.SMTP, email: EmailMessage,
                  message: OutgoingMessage) -> tuple[SendResult, bool]:
        """The result, and whether the connection may serve another message."""
        try:
            smtp.send_message(email, from_addr=self.config.email_from.address, to_addrs=[message.destination])
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            return self.failed(message, *classify_reply(code, reply, "recipient refused")), True
        except smtplib.SMTPSenderRefused as error:
            return self.failed(message, *classify_reply(error.smtp_code, error.smtp_error, "sender refused")), True
        except smtplib.SMTPDataError as error:
            return self.failed(message, *classify_reply(error.smtp_code, error.smtp_error, "message refused")), True
        except smtplib.SMTPNotSupportedError as error:  # e.g. a UTF-8 address and no SMTPUTF8
            return self.failed(message, permanent=True, error=f"SMTP server cannot take this message: {error}"), True
        except smtplib.SMTPResponseException as error:
            return self.failed(message, *classify_reply(error.smtp_code, error.smtp_error, "while sending")), False
        except (smtplib.SMTPException, OSError) as error:  # disconnected, timed out, reset
            return self.failed(message, permanent=False, error=f"SMTP connection lost while sending: "
                                                               f"{type(error).__name__}: {error}"), False
        return SendResult.sent(str(email["Message-ID"])), True

    def _setup_error(self, error: BaseException) -> str:
        where = f"{self.config.host}:{self.config.port}"
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return (f"SMTP login to {where} refused ({error.smtp_code} {_reply_text(error.smtp_error)}): "
                    "check the user and password in SMTP_URL")
        if isinstance(error, smtplib.SMTPResponseException):
            return f"SMTP server {where} refused the session: {error.smtp_code} {_reply_text(error.smtp_error)}"
        if isinstance(error, SmtpSetupError):
            return str(error)
        if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
            return f"SMTP server {where} timed out after {self.config.timeout:g}s"
        return f"cannot reach SMTP server {where}: {type(error).__name__}: {error}"

    def _checkout(self) -> smtplib.SMTP:
        """An idle connection that still answers NOOP, else a new one."""
        while True:
            with self._lock:
                smtp = self._idle.pop() if self._idle else None
            if smtp is None:
                return self._open()
            try:
                if smtp.noop()[0] == 250:
                    return smtp
            except (smtplib.SMTPException, OSError):
                pass
            _quietly_close(smtp)

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _open(self) -> smtplib.SMTP:
        cfg = self.config
        smtp: smtplib.SMTP
        if cfg.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, local_hostname=local_hostname(), timeout=cfg.timeout,
                                    context=self._context())
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, local_hostname=local_hostname(), timeout=cfg.timeout)
        try:
            self._secure_and_login(smtp)
        except BaseException:
            _quietly_close(smtp)
            raise
        return smtp

    def _secure_and_login(self, smtp: smtplib.SMTP) -> None:
        cfg = self.config
        smtp.ehlo()
        encrypted = cfg.scheme == "smtps"
        if not encrypted and cfg.starttls != "never":
            if smtp.has_extn("starttls"):
                smtp.starttls(context=self._context())
                smtp.ehlo()
                encrypted = True
            elif cfg.starttls == "require":
                raise SmtpSetupError(f"SMTP server {cfg.host}:{cfg.port} does not offer STARTTLS "
                                     "and SMTP_URL says starttls=require")
        if cfg.username:
            if not encrypted and not is_loopback(cfg.host):
                raise SmtpSetupError(f"refusing to send the SMTP password unencrypted to {cfg.host}: "
                                     "use smtps:// or a server that offers STARTTLS")
            smtp.login(cfg.username, cfg.password or "")

    def close(self) -> None:
        """QUIT every idle connection (a connection in use is closed by its sender)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for smtp in idle:
            _quietly_close(smtp, polite=True)


from_env, check_config = entry_points(parse_config, SmtpEmailSender)


def _quietly_close(smtp: smtplib.SMTP, polite: bool = False) -> None:
    try:
        if polite:
            smtp.quit()
        else:
            smtp.close()
    except (smtplib.SMTPException, OSError):
        smtp.close()

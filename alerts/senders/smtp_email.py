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
several threads). A connection idle for more than a second is checked with NOOP before reuse;
one in steady use is not (a NOOP is one more round trip per message), and if the server has
dropped it meanwhile, MAIL FROM fails before any of the message was sent, so the message is
sent once more on a new connection. A connection that failed is closed and replaced.
Outcomes: accepted -> SENT with the Message-ID as the provider id; 4xx replies, connection
errors and timeouts -> TRANSIENT; 5xx replies to the message (e.g. 550 recipient refused) ->
PERMANENT. Failures while connecting, in STARTTLS
or in login (e.g. 535 wrong password) are about the server or our settings, not the
message: TRANSIENT, so the rows go out once the settings are fixed.
"""

import ipaddress
import logging
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from html import escape
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
NOOP_AFTER_IDLE = 1.0  # seconds: a connection idle longer is checked with NOOP before reuse


class StaleConnection(Exception):
    """A reused connection failed at MAIL FROM: nothing of the message was sent."""


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


def _decoded(value: str) -> str:
    """A percent-encoded user or password; as typed when its escapes do not decode (a literal '%')."""
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        return value


def parse_config(env: Mapping[str, str]) -> SmtpConfig | None:
    """SMTP settings from env; None when SMTP_URL is not set; UsageError when malformed."""
    url = env.get("SMTP_URL", "").strip()
    if not url:
        return None
    # The user information ends at the last '@' (a password may hold '@', '/', '?' or '#' as typed);
    # the rest is an ordinary URL.
    scheme_part, separator, rest = url.partition("://")
    userinfo, at, host_part = rest.rpartition("@")
    username, _, raw_password = userinfo.partition(":") if at else ("", "", "")
    try:
        parts = urlsplit(f"{scheme_part}{separator}{host_part}")
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
    starttls, timeout = _query_flags(f"{scheme_part}{separator}{host_part}", scheme)
    password = _decoded(raw_password) if at and ":" in userinfo else None
    return SmtpConfig(scheme=scheme, host=parts.hostname, port=port or DEFAULT_PORTS[scheme],
                      username=_decoded(username) if username else None, password=password,
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


REFERENCE_MARK = "reference-mark-5f3a9c1e7b"  # ASCII, kept as it is by 7bit and 8bit transfer encodings
LINK_MARK = "unsubscribe-mark-5f3a9c1e7b"  # where the recipient's unsubscribe link goes, the same way
_TRANSFER_ENCODING = re.compile(rb"^Content-Transfer-Encoding:[ \t]*([A-Za-z0-9-]+)", re.MULTILINE | re.IGNORECASE)
QP_LINE = 75  # characters of a quoted-printable line before its soft break '=' (RFC 2045: at most 76)


@lru_cache(maxsize=128)
def event_part(subject: str, text: str, html: str, from_header: str) -> bytes:
    """Subject, From and the text/plain + text/html alternative, built by the email package."""
    email = EmailMessage()
    email["Subject"] = subject
    email["From"] = from_header
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    return email.as_bytes(policy=email.policy.clone(linesep="\r\n"))


def shared_part(message: OutgoingMessage, email_from: EmailFrom) -> bytes:
    """The message without its own headers. Building a MIME message costs about 2 ms, which at
    hundreds of emails a second would be the runner's main work, and the recipients of one event
    differ only by the footer's reference: so the part is built once per event with a mark where
    the reference goes (and one where the recipient's unsubscribe link goes), and the marks
    replaced per recipient (personalize()). When a part's transfer encoding did not keep a mark as
    it is (base64), the part is built for this message alone."""
    subject = templates.email_subject(message)
    link = templates.unsubscribe_link(message)
    link_mark = LINK_MARK if link is not None else None
    marked = event_part(subject, templates.email_text(message, REFERENCE_MARK, unsubscribe_text=link_mark),
                        templates.email_html(message, REFERENCE_MARK, unsubscribe_text=link_mark), email_from.header())
    personal = personalize(marked, templates.reference(message), link)
    if personal is not None:
        return personal
    return event_part.__wrapped__(subject, templates.email_text(message), templates.email_html(message),
                                  email_from.header())


def personalize(marked: bytes, reference: str, link: str | None) -> bytes | None:
    """The event's part with the recipient's reference and unsubscribe link in place of the marks,
    the link encoded as each part's transfer encoding wants it (the text part's first, the HTML
    part's second, escaped as HTML); None when a mark did not survive its encoding as it is."""
    if marked.count(REFERENCE_MARK.encode()) != 2:
        return None
    personal = marked.replace(REFERENCE_MARK.encode(), reference.encode())
    if link is None:
        return personal
    encodings = [match.group(1).decode("ascii").lower() for match in _TRANSFER_ENCODING.finditer(personal)]
    pieces = personal.split(LINK_MARK.encode())
    if len(pieces) != 3 or len(encodings) != 2:
        return None
    result = pieces[0]
    for piece, value, encoding in zip(pieces[1:], (link, escape(link, quote=True)), encodings, strict=True):
        encoded = link_in(value, encoding)
        if encoded is None:
            return None
        result += encoded + piece
    return result


def link_in(value: str, encoding: str) -> bytes | None:
    """An ASCII link (alerts.unsubscribe refuses anything else) as it stands in a part of that transfer
    encoding: as it is in 7bit and 8bit; in quoted-printable with '=' escaped and on lines of its own
    between soft line breaks, so that no line grows past 76 characters; None for base64."""
    if encoding in ("7bit", "8bit"):
        return value.encode("ascii")
    if encoding != "quoted-printable":
        return None
    escaped = value.replace("=", "=3D")
    lines, start = [], 0
    while start < len(escaped):
        end = min(start + QP_LINE, len(escaped))
        while end < len(escaped) and "=" in escaped[end - 2:end]:  # never split an =3D escape
            end -= 1
        lines.append(escaped[start:end])
        start = end
    return ("=\r\n" + "=\r\n".join(lines) + "=\r\n").encode("ascii")


def build_email(message: OutgoingMessage, email_from: EmailFrom) -> tuple[bytes, str]:
    """(the message as sent, its Message-ID): the recipient's own To, Date, a Message-ID derived
    from the delivery id in EMAIL_FROM's domain and, when configured, the one-click unsubscribe
    headers (RFC 8058), then the shared part. The destination passed the one destination rule
    (no spaces or line breaks), so it goes into To as it is; the link is an http(s) URL without
    spaces (alerts.unsubscribe) with a base64url token. Nothing marks an alert as a reply: no
    In-Reply-To or References, and subjects start with the alert's label."""
    message_id = templates.email_message_id(message.delivery_id, email_from.domain, message.kind)
    own = f"To: {message.destination}\r\nDate: {format_datetime(datetime.now(UTC))}\r\nMessage-ID: {message_id}\r\n"
    for name, value in templates.list_unsubscribe_headers(message).items():
        own += f"{name}: {value}\r\n"
    return own.encode() + shared_part(message, email_from), message_id


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


# Enhanced status codes (RFC 3463) that say the mailbox does not exist: 5.1.1 bad destination mailbox
# address, 5.1.10 recipient address has null MX (RFC 7505). Policy refusals (5.7.x), a full mailbox
# (5.2.2) and the like are about the message or the moment, never the address.
_MAILBOX_GONE = re.compile(r"^\s*5\.1\.(?:1|10)(?!\d)")


def classify_reply(code: int, reply: bytes | str, what: str) -> tuple[bool, str]:
    """(permanent?, error) for an SMTP reply to the message: 5xx permanent, anything else transient."""
    return 500 <= code <= 599, f"SMTP {code} {_reply_text(reply)} ({what})"


def mailbox_gone(code: int, reply: bytes | str) -> bool:
    """Whether a reply says the recipient's mailbox does not exist: 550 (or another 5xx) with the
    enhanced status 5.1.1 or 5.1.10."""
    return 500 <= code <= 599 and bool(_MAILBOX_GONE.match(_reply_text(reply)))


class SmtpEmailSender(Provider):
    """A pool of SMTP connections, one per message in flight; see the module docstring for the outcomes."""

    name = "smtp"
    channel = "email"

    def __init__(self, config: SmtpConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.secret = config.password
        self._ssl_context = ssl_context
        self._idle: list[tuple[smtplib.SMTP, float]] = []  # (connection, last used): the newest first out
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SmtpEmailSender({self.config.masked_url})"

    def transmit(self, message: OutgoingMessage) -> SendResult:
        try:
            raw, message_id = build_email(message, self.config.email_from)
        except ValueError as error:  # a header the email package refuses, e.g. a line break
            return self.failed(message, permanent=True, error=f"cannot build the email: {error}")
        try:
            smtp, reused = self._checkout()
            try:
                result, reusable = self._transmit(smtp, raw, message_id, message, reused)
            except StaleConnection:
                _quietly_close(smtp)
                smtp = self._open()
                result, reusable = self._transmit(smtp, raw, message_id, message, reused=False)
        except (smtplib.SMTPException, OSError, SmtpSetupError) as error:
            return self.unreachable(message, self._setup_error(error))
        if reusable:
            with self._lock:
                self._idle.append((smtp, time.monotonic()))
        else:
            _quietly_close(smtp)
        return result

    def _transmit(self, smtp: smtplib.SMTP, raw: bytes, message_id: str, message: OutgoingMessage,
                  reused: bool) -> tuple[SendResult, bool]:
        """The result, and whether the connection may serve another message; StaleConnection when a
        reused connection fails at MAIL FROM."""
        try:
            self._mail_from(smtp, raw, message.destination, reused)
            code, reply = smtp.rcpt(message.destination)
            if code not in (250, 251):
                return self._refused(smtp, message, code, reply, "recipient refused")
            code, reply = smtp.data(raw)
            if code != 250:
                return self._refused(smtp, message, code, reply, "message refused")
        except smtplib.SMTPSenderRefused as error:
            return self._refused(smtp, message, error.smtp_code, error.smtp_error, "sender refused")
        except smtplib.SMTPNotSupportedError as error:  # e.g. a UTF-8 address and no SMTPUTF8
            return self.failed(message, permanent=True, error=f"SMTP server cannot take this message: {error}"), True
        except smtplib.SMTPResponseException as error:  # DATA itself refused, or 421 closing
            return self._refused(smtp, message, error.smtp_code, error.smtp_error, "while sending")
        except (smtplib.SMTPException, OSError) as error:  # disconnected, timed out, reset
            return self.failed(message, permanent=False, error=f"SMTP connection lost while sending: "
                                                               f"{type(error).__name__}: {error}"), False
        return SendResult.sent(message_id), True

    def _mail_from(self, smtp: smtplib.SMTP, raw: bytes, destination: str, reused: bool) -> None:
        """MAIL FROM with the options smtplib's sendmail() would give (SIZE; SMTPUTF8 for a non-ASCII address)."""
        options = []
        if not destination.isascii():
            if not smtp.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError("the server does not offer SMTPUTF8 for a non-ASCII address")
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        if smtp.has_extn("size"):
            options.append(f"SIZE={len(raw)}")
        try:
            code, reply = smtp.mail(self.config.email_from.address, options)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            if reused:
                raise StaleConnection() from error
            raise
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self.config.email_from.address)

    def _refused(self, smtp: smtplib.SMTP, message: OutgoingMessage, code: int, reply: bytes | str,
                 what: str) -> tuple[SendResult, bool]:
        """A refusal: reset the transaction so the connection serves the next message (not after 421)."""
        reusable = code != 421
        if reusable:
            try:
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                reusable = False
        permanent, error = classify_reply(code, reply, what)
        gone = what == "recipient refused" and mailbox_gone(code, reply)
        return self.failed(message, permanent, error, destination_gone=gone), reusable

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

    def _checkout(self) -> tuple[smtplib.SMTP, bool]:
        """(connection, reused): an idle one (NOOP-checked when idle over NOOP_AFTER_IDLE), else a new one."""
        while True:
            with self._lock:
                smtp, last_used = self._idle.pop() if self._idle else (None, 0.0)
            if smtp is None:
                return self._open(), False
            if time.monotonic() - last_used <= NOOP_AFTER_IDLE:
                return smtp, True
            try:
                if smtp.noop()[0] == 250:
                    return smtp, True
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
        for smtp, _ in idle:
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

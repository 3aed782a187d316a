"""The `deliver` activity: one prepared message to one recipient on one channel, one small adapter per channel.

- email: SMTP (aiosmtplib; STARTTLS or implicit TLS and auth from ESCALATION_SMTP_URL); the message key becomes
  the Message-ID, so a redelivery is recognisable; a customer's mails carry the ticket's thread in
  In-Reply-To/References;
- webhook: Standard Webhooks (webhook-id = the message key, webhook-timestamp, webhook-signature), signed with the
  `standardwebhooks` library;
- chat: an incoming webhook's JSON `{"text": ...}`;
- outbox: the JSONL outbox, which also keeps every delivered message (without its address) as the audit of what
  was sent.

A refusal that retrying cannot change (HTTP 4xx other than 408/429, SMTP 5xx) fails the activity with the
non-retryable error type `delivery_rejected`: the ticket records `notification_failed`. Anything else is retried
with backoff; a 429 honours Retry-After. Logs name the recipient id and the key, never the address.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import httpx
import structlog
from standardwebhooks.webhooks import Webhook
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notify import Outbox
from workflows.common.delivery import DELIVERY_REJECTED, DeliveryChannel, DeliveryResult, Message

log = structlog.get_logger("escalation.delivery")
RETRY_AFTER_MAX = timedelta(hours=1)


class ChannelAdapter(Protocol):
    async def send(self, m: Message) -> str: ...  # a short detail for the audit (server's answer), or raise


def rejected(m: Message, why: str) -> ApplicationError:
    return ApplicationError(f"{m.channel.value} to {m.recipient_id} refused: {why}", type=DELIVERY_REJECTED,
                            non_retryable=True)


def message_id(key: str, domain: str) -> str:
    """The Message-ID a key becomes (the same for every attempt): `<key-with-safe-characters@domain>`."""
    return f"<{re.sub(r'[^A-Za-z0-9._-]', '.', key)}@{domain}>"


class SmtpUrl:
    """smtp://[user[:password]@]host[:port][?starttls=true|false][&cafile=PATH][&verify=false], smtps://... for
    implicit TLS."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"ESCALATION_SMTP_URL {url!r}: expected smtp://host[:port] or smtps://host[:port]")
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        self.host = parts.hostname
        self.implicit_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.starttls = query.get("starttls", "false") in ("1", "true", "yes")
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.verify_tls = query.get("verify", "true") in ("1", "true", "yes")
        cafile = parse_qs(parts.query).get("cafile")
        self.cafile = cafile[-1] if cafile else None  # a private CA's (or a self-signed) certificate to trust


class SmtpPool:
    """A few SMTP connections kept open and reused: connecting, EHLO, STARTTLS and AUTH once per connection, not
    once per mail (that handshake was most of a mail's cost, on both ends). A connection that failed in any way is
    closed, never reused; one the server closed while idle is replaced and the mail sent once more on the new one."""

    def __init__(self, server: SmtpUrl, timeout_s: float, size: int = 4) -> None:
        self.server, self.timeout_s = server, timeout_s
        self.slots = asyncio.Semaphore(size)
        self.idle: list[aiosmtplib.SMTP] = []

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.server
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, username=s.username, password=s.password,
                                 use_tls=s.implicit_tls, start_tls=s.starttls if not s.implicit_tls else None,
                                 validate_certs=s.verify_tls, cert_bundle=s.cafile, timeout=self.timeout_s)
        await client.connect()
        return client

    @staticmethod
    async def _close(client: aiosmtplib.SMTP) -> None:
        with contextlib.suppress(Exception):
            await client.quit()
        client.close()

    async def send(self, sender: str, recipient: str, mail: bytes) -> tuple[dict[str, Any], str]:
        async with self.slots:
            for reused in (True, False):
                client = self.idle.pop() if reused and self.idle else None
                if client is None:
                    reused, client = False, await self._connect()
                try:
                    refused, answer = await client.sendmail(sender, [recipient], mail)
                except aiosmtplib.SMTPServerDisconnected:
                    client.close()
                    if reused:
                        continue  # the server dropped an idle connection: once more, on a new one
                    raise
                except BaseException:
                    await self._close(client)
                    raise
                self.idle.append(client)
                return refused, answer
        raise AssertionError("unreachable")  # pragma: no cover


def _header_value(value: str) -> str:
    """One line (a CR or LF in a subject or an address can never start a header of its own); RFC 2047-encoded
    when not ASCII."""
    value = " ".join(value.split())
    return value if value.isascii() else Header(value, "utf-8").encode()


def _text_part(subtype: str, text: str) -> bytes:
    body = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'.encode() + body


class EmailChannel:
    def __init__(self, url: str, sender: str, domain: str, timeout_s: float, connections: int = 4) -> None:
        self.server = SmtpUrl(url)
        self.pool = SmtpPool(self.server, timeout_s, connections)
        self.sender, self.domain, self.timeout_s = sender, domain, timeout_s

    def compose(self, m: Message) -> bytes:
        """The mail as sent (RFC 5322, MIME, UTF-8 parts in base64). Written out directly: the `email` package's
        EmailMessage and its generator cost about 2 ms a mail, most of a mail's cost to the worker."""
        headers = [("From", self.sender), ("To", m.address), ("Subject", m.subject),
                   ("Message-ID", message_id(m.key, self.domain)), ("Date", formatdate(localtime=False)),
                   ("X-Escalation-Key", m.key)]
        if m.thread_id:
            headers += [("In-Reply-To", m.thread_id), ("References", m.thread_id)]
        head = "".join(f"{name}: {_header_value(value)}\r\n" for name, value in headers) + "MIME-Version: 1.0\r\n"
        if not m.html:
            return head.encode("ascii") + _text_part("plain", m.text)
        boundary = "=_" + hashlib.sha256(m.key.encode()).hexdigest()[:40]  # cannot occur in base64 parts
        parts = b"".join(f"--{boundary}\r\n".encode() + part + b"\r\n"
                         for part in (_text_part("plain", m.text), _text_part("html", m.html)))
        return (head + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n').encode("ascii") \
            + parts + f"--{boundary}--\r\n".encode()

    async def send(self, m: Message) -> str:
        try:
            _refused, answer = await self.pool.send(self.sender, m.address, self.compose(m))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if all(500 <= c < 600 for c in codes):
                raise rejected(m, f"SMTP {codes[0]}") from None
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise rejected(m, f"SMTP {exc.code} {exc.message[:200]}") from None
            raise
        return f"SMTP {answer[:200]}"


def _status(m: Message, r: httpx.Response) -> str:
    """2xx: delivered. 408, 429, 5xx: retried (429 after its Retry-After). Any other 4xx: final."""
    if r.is_success:
        return f"HTTP {r.status_code}"
    if r.status_code == 429:
        delay = _retry_after(r.headers.get("retry-after"))
        raise ApplicationError(f"{m.channel.value} to {m.recipient_id}: HTTP 429, retry after {delay}",
                               type="delivery_throttled", next_retry_delay=delay)
    if 400 <= r.status_code < 500 and r.status_code != 408:
        raise rejected(m, f"HTTP {r.status_code}")
    raise ApplicationError(f"{m.channel.value} to {m.recipient_id}: HTTP {r.status_code}", type="delivery_failed")


def _retry_after(value: str | None) -> timedelta:
    """Retry-After in seconds (an HTTP date is taken as 'soon'), bounded."""
    try:
        seconds = max(0.0, float(value or "1"))
    except ValueError:
        seconds = 1.0
    return min(timedelta(seconds=seconds), RETRY_AFTER_MAX)


class WebhookChannel:
    """Standard Webhooks: the body is the message without its address."""

    def __init__(self, secret: str | None, http: httpx.AsyncClient) -> None:
        self.signer = Webhook(secret) if secret else None
        self.http = http

    async def send(self, m: Message) -> str:
        if self.signer is None:
            raise rejected(m, "no signing secret (set ESCALATION_WEBHOOK_SECRET)")
        body = json.dumps({"type": f"ticket.{m.kind}", **m.model_dump(mode="json", exclude={"address"})},
                          separators=(",", ":"))
        now = datetime.now(UTC)
        headers = {"content-type": "application/json", "webhook-id": m.key,
                   "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": self.signer.sign(m.key, now, body)}
        return _status(m, await self.http.post(m.address, content=body, headers=headers))


class ChatChannel:
    """A chat tool's incoming webhook: `{"text": ...}`."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def send(self, m: Message) -> str:
        return _status(m, await self.http.post(m.address, json={"text": f"*{m.subject}*\n{m.text}"}))


class Deliverer:
    """The `deliver` activity, bound to its adapters (built once by the worker from the settings)."""

    def __init__(self, outbox: Outbox, email: EmailChannel | None, webhook: WebhookChannel, chat: ChatChannel) -> None:
        self.outbox = outbox
        self.adapters: dict[DeliveryChannel, ChannelAdapter | None] = {
            DeliveryChannel.email: email, DeliveryChannel.webhook: webhook, DeliveryChannel.chat: chat,
            DeliveryChannel.outbox: None}

    @activity.defn(name="deliver")
    async def deliver(self, m: Message) -> DeliveryResult:
        adapter = self.adapters[m.channel]
        detail = "outbox only" if m.channel == DeliveryChannel.outbox else "no SMTP server configured: outbox only"
        if adapter is not None:
            try:
                detail = await adapter.send(m)
            except ApplicationError as exc:
                log.warning("delivery failed", key=m.key, recipient_id=m.recipient_id, channel=m.channel.value,
                            final=exc.non_retryable, error=exc.message, attempt=_attempt())
                _count("escalation_notifications_failed", channel=m.channel.value, final=str(exc.non_retryable).lower())
                raise
            except Exception as exc:
                log.warning("delivery failed", key=m.key, recipient_id=m.recipient_id, channel=m.channel.value,
                            final=False, error=type(exc).__name__, attempt=_attempt())
                _count("escalation_notifications_failed", channel=m.channel.value, final="false")
                raise
        record = {**m.model_dump(mode="json", exclude={"address", "to"}), "delivered": detail}  # no personal data
        duplicate = not await self.outbox.append(m.key, record)
        if not duplicate:
            _count("escalation_notifications_delivered", channel=m.channel.value)
        log.info("delivered", key=m.key, recipient_id=m.recipient_id, channel=m.channel.value, detail=detail,
                 duplicate=duplicate, attempt=_attempt())
        return DeliveryResult(key=m.key, outcome="duplicate" if duplicate else "delivered", at=datetime.now(UTC),
                              detail=detail)


# The worker's Prometheus meter (README "Prometheus"): deliveries by channel; failed attempts by channel and whether
# the failure was final (refused) or is retried.
NOTIFICATION_COUNTERS = {
    "escalation_notifications_delivered": "messages delivered, by channel (a retried delivery's duplicate not counted)",
    "escalation_notifications_failed": "failed delivery attempts, by channel and final (true: refused, not retried)",
}


def _count(name: str, **labels: str) -> None:
    if activity.in_activity():
        activity.metric_meter().create_counter(name, NOTIFICATION_COUNTERS[name]).add(1, labels)


def _attempt() -> int:
    return activity.info().attempt if activity.in_activity() else 0

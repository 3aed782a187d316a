"""The delivery adapters against real receivers on loopback: an SMTP server (aiosmtpd) and an HTTP server.

Each checks what a receiver sees (headers, signature, body) and how a refusal is classified: final (recorded on
the ticket) or retried (with Retry-After honoured)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError

from activities.delivery import ChatChannel, Deliverer, EmailChannel, WebhookChannel, message_id
from activities.notify import Outbox
from starter.devstack.mailserver import MailServer
from tests.support.receivers import HttpReceiver, http_receiver
from workflows.common.delivery import DELIVERY_REJECTED, DeliveryChannel, Message, message_key

SECRET = "whsec_" + base64.b64encode(b"escalation-test-secret-32-bytes!").decode()


def msg(channel: DeliveryChannel, address: str, **kw: object) -> Message:
    key = message_key("ticket-T-1:4:breach", "mia", channel)
    fields: dict[str, object] = {
        "key": key, "notification_key": "ticket-T-1:4:breach", "ticket_id": "T-1", "kind": "breach",
        "channel": channel, "recipient_id": "mia", "address": address, "subject": "SLA breached: printer",
        "text": "Due 10:00", "html": "<p>Due 10:00</p>", **kw}
    return Message.model_validate(fields)


@pytest.fixture
def mail(tmp_path: Path) -> Iterator[MailServer]:
    server = MailServer(tmp_path / "mail").start()
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as r:
        yield r


def deliverer(tmp_path: Path, mail: MailServer | None = None) -> tuple[Deliverer, httpx.AsyncClient]:
    http = httpx.AsyncClient(timeout=5)
    email = EmailChannel(mail.url, "Escalations <esc@example.com>", "escalation.test", 5) if mail else None
    return Deliverer(Outbox(tmp_path / "outbox.jsonl"), email, WebhookChannel(SECRET, http), ChatChannel(http)), http


# ----- email -----------------------------------------------------------------------------------------------------


async def test_an_email_carries_its_key_as_message_id_and_the_tickets_thread(tmp_path: Path, mail: MailServer) -> None:
    d, _ = deliverer(tmp_path, mail)
    m = msg(DeliveryChannel.email, "mia@example.com", thread_id="<ticket-T-1@escalation.test>")
    await d.deliver(m)
    [got] = mail.handler.mails()
    assert got["Message-ID"] == message_id(m.key, "escalation.test") == "<ticket-T-1.4.breach.mia.email@escalation.test>"
    assert got["In-Reply-To"] == got["References"] == "<ticket-T-1@escalation.test>"
    assert (got["To"], got["Subject"], got["From"]) == ("mia@example.com", "SLA breached: printer",
                                                         "Escalations <esc@example.com>")
    parts = {p.get_content_type(): p.get_content().strip() for p in got.iter_parts()}
    assert parts == {"text/plain": "Due 10:00", "text/html": "<p>Due 10:00</p>"}


async def test_non_ascii_text_and_a_line_break_in_a_subject_arrive_intact_in_one_header(tmp_path: Path,
                                                                                        mail: MailServer) -> None:
    d, _ = deliverer(tmp_path, mail)
    text = "Grüße — the 10:00 deadline passed.\n\n" + "Ligne très longue " * 40
    await d.deliver(msg(DeliveryChannel.email, "mia@example.com", subject="Überfällig: printer\r\nBcc: x@evil",
                        text=text, html=None))
    [got] = mail.handler.mails()
    assert got["Subject"] == "Überfällig: printer Bcc: x@evil" and got["Bcc"] is None, "one header, no injected one"
    assert not got.is_multipart() and got.get_content_type() == "text/plain"
    assert got.get_content().rstrip("\n") == text


async def test_mails_reuse_a_kept_connection_and_survive_one_the_server_dropped(tmp_path: Path,
                                                                               mail: MailServer) -> None:
    channel = EmailChannel(mail.url, "Escalations <esc@example.com>", "escalation.test", 5)
    for i in range(3):
        await channel.send(msg(DeliveryChannel.email, "mia@example.com", key=f"k-{i}"))
    assert (len(mail.handler.mails()), mail.handler.greetings) == (3, 1), "three mails, one connection"
    channel.pool.idle[0].close()  # as if the server had closed it while it was idle
    await channel.send(msg(DeliveryChannel.email, "mia@example.com", key="k-3"))
    assert (len(mail.handler.mails()), mail.handler.greetings) == (4, 2), "sent once, on a new connection"


async def test_a_redelivered_email_has_the_same_message_id(tmp_path: Path, mail: MailServer) -> None:
    """A retry after a lost answer sends again (SMTP cannot promise once); the receiver can tell by Message-ID."""
    d, _ = deliverer(tmp_path, mail)
    m = msg(DeliveryChannel.email, "mia@example.com")
    first, again = await d.deliver(m), await d.deliver(m)
    ids = [x["Message-ID"] for x in mail.handler.mails()]
    assert len(ids) == 2 and ids[0] == ids[1]
    assert (first.outcome, again.outcome) == ("delivered", "duplicate"), "the outbox's audit keeps one record"


async def test_a_permanent_smtp_refusal_is_final(tmp_path: Path, mail: MailServer) -> None:
    mail.handler.refuse_with = "550 no such mailbox"
    d, _ = deliverer(tmp_path, mail)
    with pytest.raises(ApplicationError) as err:
        await d.deliver(msg(DeliveryChannel.email, "gone@example.com"))
    assert err.value.type == DELIVERY_REJECTED and err.value.non_retryable and "550" in err.value.message


async def test_a_temporary_smtp_refusal_is_retried(tmp_path: Path, mail: MailServer) -> None:
    mail.handler.refuse_with = "451 try again later"
    d, _ = deliverer(tmp_path, mail)
    with pytest.raises(Exception) as err:
        await d.deliver(msg(DeliveryChannel.email, "mia@example.com"))
    assert not (isinstance(err.value, ApplicationError) and err.value.non_retryable)


def test_an_smtp_url_names_tls_and_credentials() -> None:
    from activities.delivery import SmtpUrl

    s = SmtpUrl("smtp://bot%40corp:p%3Ass@mail.corp:587?starttls=true")
    assert (s.host, s.port, s.starttls, s.implicit_tls, s.username, s.password) == (
        "mail.corp", 587, True, False, "bot@corp", "p:ss")
    assert SmtpUrl("smtps://mail.corp").port == 465 and SmtpUrl("smtps://mail.corp").implicit_tls
    with pytest.raises(ValueError, match="ESCALATION_SMTP_URL"):
        SmtpUrl("http://mail.corp")


# ----- signed webhooks and chat ---------------------------------------------------------------------------------


async def test_a_webhook_is_signed_as_standard_webhooks_say(tmp_path: Path, receiver: HttpReceiver) -> None:
    d, _ = deliverer(tmp_path)
    m = msg(DeliveryChannel.webhook, f"{receiver.url}/hooks/tier2")
    await d.deliver(m)
    [got] = receiver.at("/hooks/tier2")
    assert got.headers["webhook-id"] == m.key
    payload = Webhook(SECRET).verify(got.body, got.headers)  # the library raises on a bad signature
    assert payload["key"] == m.key and payload["type"] == "ticket.breach" and "address" not in payload
    tampered = got.body.replace(b"breach", b"resolved")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, got.headers)


async def test_a_chat_message_is_the_text_payload_chat_tools_accept(tmp_path: Path, receiver: HttpReceiver) -> None:
    d, _ = deliverer(tmp_path)
    await d.deliver(msg(DeliveryChannel.chat, f"{receiver.url}/chat"))
    [got] = receiver.at("/chat")
    assert got.json() == {"text": "*SLA breached: printer*\nDue 10:00"}


@pytest.mark.parametrize(("status", "final"), [(410, True), (404, True), (400, True), (503, False), (500, False),
                                               (408, False)])
async def test_which_http_answers_are_final(tmp_path: Path, receiver: HttpReceiver, status: int, final: bool) -> None:
    receiver.answer("/chat", status)
    d, _ = deliverer(tmp_path)
    with pytest.raises(ApplicationError) as err:
        await d.deliver(msg(DeliveryChannel.chat, f"{receiver.url}/chat"))
    assert err.value.non_retryable is final
    assert (err.value.type == DELIVERY_REJECTED) is final


async def test_a_429_is_retried_after_its_retry_after(tmp_path: Path, receiver: HttpReceiver) -> None:
    receiver.answer("/chat", (429, {"Retry-After": "7"}))
    d, _ = deliverer(tmp_path)
    with pytest.raises(ApplicationError) as err:
        await d.deliver(msg(DeliveryChannel.chat, f"{receiver.url}/chat"))
    assert not err.value.non_retryable and err.value.next_retry_delay == timedelta(seconds=7)


# ----- the audit and the logs -----------------------------------------------------------------------------------


async def test_the_outbox_keeps_what_was_sent_without_the_address(tmp_path: Path, receiver: HttpReceiver) -> None:
    d, _ = deliverer(tmp_path)
    await d.deliver(msg(DeliveryChannel.chat, f"{receiver.url}/chat"))
    [line] = [json.loads(x) for x in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert line["key"].endswith(":mia:chat") and line["text"] == "Due 10:00" and line["delivered"] == "HTTP 200"
    assert "address" not in line and receiver.url not in json.dumps(line)


async def test_logs_name_the_recipient_never_the_address(tmp_path: Path, mail: MailServer, receiver: HttpReceiver) -> None:
    d, _ = deliverer(tmp_path, mail)
    receiver.answer("/chat", 410)
    with capture_logs() as logs:
        await d.deliver(msg(DeliveryChannel.email, "mia.private@example.com"))
        with pytest.raises(ApplicationError):
            await d.deliver(msg(DeliveryChannel.chat, f"{receiver.url}/chat"))
    text = json.dumps(logs, default=str)
    assert "mia.private@example.com" not in text and receiver.url not in text
    assert [e["recipient_id"] for e in logs] == ["mia", "mia"]


async def test_without_an_smtp_server_mail_stays_in_the_outbox(tmp_path: Path) -> None:
    d, _ = deliverer(tmp_path)
    result = await d.deliver(msg(DeliveryChannel.email, "mia@example.com"))
    assert result.outcome == "delivered" and "outbox only" in result.detail


async def test_a_customer_on_another_channel_hears_back_through_its_integration(tmp_path: Path,
                                                                                 receiver: HttpReceiver) -> None:
    from datetime import UTC, datetime

    from activities.prepare import Preparer
    from starter.runtime.policy_file import load_policy
    from workflows import ticket as core
    from workflows.common.directory import Directory

    preparer = Preparer(tmp_path / "none.yaml", lambda p: Directory(), Path("config/templates"), "http://x", "esc.test",
                        customer_channels={"tel": f"{receiver.url}/sms"})
    d, _ = deliverer(tmp_path)
    now = datetime.now(UTC)
    for contact, channel in (("tel:+49301234567", DeliveryChannel.webhook), ("twitter:@ana", DeliveryChannel.outbox)):
        t = core.Ticket(id=f"C-{contact[:3]}", subject="Router down", customer_id="cust-1", opened_at=now,
                        customer_contact=contact)
        opened = core.open_ticket(t, load_policy(), now)
        notice = next(f for f in opened.effects if isinstance(f, core.Notify) and f.kind == "opened")
        prepared = preparer.prepare_now(core.prepare_input(opened.state, notice, now))
        [m] = prepared.messages
        assert m.channel == channel
        await d.deliver(m)
        if channel == DeliveryChannel.outbox:
            assert "no integration for 'twitter' contacts" in prepared.unreached[0]
    [sms] = receiver.at("/sms")
    payload = Webhook(SECRET).verify(sms.body, sms.headers)
    assert payload["to"] == "tel:+49301234567" and payload["recipient_id"] == "customer"
    assert "Router down" in payload["text"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl); the client trusts it through `cafile=`."""
    import subprocess

    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def test_starttls_and_login_with_a_certificate_we_trust(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    import ssl
    from typing import Any

    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"escalation", b"s3cret/pw")
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers a failure with 535 itself

    server = MailServer(tmp_path / "mail", tls_context=context, require_starttls=True, authenticator=authenticate,
                        auth_require_tls=True).start()
    try:
        base = f"127.0.0.1:{server.port}?starttls=true&cafile={cert}"
        good = EmailChannel(f"smtp://escalation:s3cret%2Fpw@{base}", "Escalations <esc@example.com>", "esc.test", 5)
        await good.send(msg(DeliveryChannel.email, "mia@example.com"))
        assert len(server.handler.mails()) == 1
        wrong = EmailChannel(f"smtp://escalation:wrong@{base}", "Escalations <esc@example.com>", "esc.test", 5)
        with pytest.raises(ApplicationError) as refused:
            await wrong.send(msg(DeliveryChannel.email, "mia@example.com"))
        assert refused.value.type == DELIVERY_REJECTED and "SMTP 535" in str(refused.value)
        untrusted = EmailChannel(f"smtp://escalation:s3cret%2Fpw@127.0.0.1:{server.port}?starttls=true",
                                 "Escalations <esc@example.com>", "esc.test", 5)
        with pytest.raises(Exception) as not_verified:  # the certificate is checked: no cafile, no trust
            await untrusted.send(msg(DeliveryChannel.email, "mia@example.com"))
        assert not (isinstance(not_verified.value, ApplicationError) and not_verified.value.non_retryable)
    finally:
        server.stop()

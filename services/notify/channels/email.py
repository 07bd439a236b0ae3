"""``email``: SMTP submission with STARTTLS and authentication, one connection per batch.

aiosmtplib (asyncio-native, maintained) does the protocol: ``start_tls=True`` refuses a
server that does not offer STARTTLS rather than sending credentials in clear, and
``connect`` logs in when a username is set. The dispatcher hands this channel up to
``smtp_batch`` deliveries in one ``session``: one connection, one TLS handshake and one login
for all of them (a new connection per mail would cost a TLS handshake and an AUTH each).

Reply codes: 5xx for a message or recipient is permanent (dead letter); 4xx, lost
connections and timeouts are transient. A failed login is treated as transient too: it is
the deployment's configuration, so deliveries wait (and the failing-channel alert fires)
until the password is fixed rather than being dead-lettered wholesale."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from services.notify.channels.base import Channel, Item, Permanent, Sender, Transient
from services.notify.render import Renderer


class EmailChannel(Channel):
    name = "email"

    def __init__(
        self,
        renderer: Renderer,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool,
        username: str | None,
        password: str | None,
        timeout: float,
        batch: int,
        cafile: str | None = None,
    ) -> None:
        self.renderer = renderer
        self.host, self.port, self.sender = host, port, sender
        self.starttls = starttls
        self.username, self.password = username, password
        self.timeout = timeout
        self.batch = batch
        self.tls = ssl.create_default_context(cafile=cafile) if starttls else None
        self.concurrency = 2  # a relay throttles many parallel logins from one client
        self.connections = 0
        """Connections opened so far (tests check one per batch)."""

    def message(self, item: Item) -> EmailMessage:
        r = self.renderer.render(item.notice)
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = item.target
        msg["Subject"] = r.subject
        msg["Date"] = format_datetime(item.notice.occurred_at)
        # The same Message-ID on every retry: mail systems thread or drop a repeat.
        domain = self.sender.rpartition("@")[2] or "aduan.local"
        msg["Message-ID"] = make_msgid(idstring=str(item.id), domain=domain)
        msg["X-Aduan-Delivery"] = item.delivery_id
        msg["Content-Language"] = "id"
        msg.set_content(r.text)
        msg.add_alternative(r.html, subtype="html")
        return msg

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Sender]:
        smtp = _SmtpSession(self)
        try:
            yield smtp
        finally:
            await smtp.disconnect()

    async def send(self, item: Item) -> str | None:
        async with self.session() as smtp:
            return await smtp.send(item)


class _SmtpSession:
    """One SMTP connection, opened at the first message and reused for the batch."""

    def __init__(self, channel: EmailChannel) -> None:
        self.channel = channel
        self.client: aiosmtplib.SMTP | None = None

    async def connect(self) -> aiosmtplib.SMTP:
        if self.client is not None and self.client.is_connected:
            return self.client
        ch = self.channel
        client = aiosmtplib.SMTP(
            hostname=ch.host,
            port=ch.port,
            start_tls=ch.starttls,
            tls_context=ch.tls,
            username=ch.username,
            password=ch.password,
            timeout=ch.timeout,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise Transient("smtp_auth", f"login refused ({exc.code})") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise Transient("smtp_connect", type(exc).__name__) from exc
        ch.connections += 1
        self.client = client
        return client

    async def disconnect(self) -> None:
        client, self.client = self.client, None
        if client is not None and client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()

    async def send(self, item: Item) -> str | None:
        client = await self.connect()
        try:
            _, reply = await client.send_message(self.channel.message(item))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if codes and all(c >= 500 for c in codes):
                raise Permanent("smtp_recipient_refused", f"codes {codes}") from exc
            raise Transient("smtp_recipient_deferred", f"codes {codes}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise Permanent(f"smtp_{exc.code}", "message refused") from exc
            raise Transient(f"smtp_{exc.code}", "message deferred") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.disconnect()
            raise Transient("smtp_connection", type(exc).__name__) from exc
        return reply.strip()[:120] or None

"""A mail server on loopback that keeps every mail it receives as an .eml file: `make run` starts it (unless
ESCALATION_SMTP_URL names a real server) so a new user sees real mails under var/mail/ without configuring
anything; the tests receive mail with it too."""

from __future__ import annotations

import logging
import re
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class KeepMail:
    """aiosmtpd handler: each mail into `folder` as <n>-<message-id>.eml; `codes` may answer a test's failures."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.refuse_with: str | None = None  # e.g. "550 no such user" (a test's final refusal)
        folder.mkdir(parents=True, exist_ok=True)
        self.kept = len(list(folder.glob("*.eml")))  # make run keeps var/mail/ across restarts
        self.greetings = 0  # EHLOs received: one per connection a client opened

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        content: bytes = envelope.original_content or envelope.content
        mid = BytesHeaderParser().parsebytes(content).get("Message-ID", "no-id")  # the headers only: cheap
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(mid).strip("<>"))[:150]
        self.kept += 1  # counted, not listed: a folder of thousands of mails must not slow each one down
        (self.folder / f"{self.kept:06d}-{safe}.eml").write_bytes(content)
        return "250 kept"

    def mails(self) -> list[EmailMessage]:
        return [message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
                for p in sorted(self.folder.glob("*.eml"))]


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class MailServer:
    """The SMTP server in a thread of this process; `url` is what ESCALATION_SMTP_URL should say."""

    def __init__(self, folder: Path, port: int = 0, host: str = "127.0.0.1", **smtp_options: Any) -> None:
        """`smtp_options`: aiosmtpd's SMTP options (a test's TLS context, require_starttls, authenticator, ...)."""
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # not a line per connection in make run's terminal
        self.handler = KeepMail(folder)
        self.controller = Controller(self.handler, hostname=host, port=port or free_port(host), **smtp_options)

    def start(self) -> MailServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def url(self) -> str:
        return f"smtp://{self.controller.hostname}:{self.port}"


def main(argv: list[str] | None = None) -> None:
    """`python -m starter.devstack.mailserver FOLDER [--port N]`: the mail server in a process of its own (the bench
    runs it so, so its CPU is not the bench client's); prints its URL, then serves until SIGTERM or SIGINT."""
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser(prog="python -m starter.devstack.mailserver", description=main.__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = MailServer(args.folder, port=args.port).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(server.url, flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()

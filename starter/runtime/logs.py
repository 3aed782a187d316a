"""structlog JSON logging for services and activities.

Log lines carry no personal data: workflow ids, ticket ids, recipient ids and roles only. As a safety net against a
message quoted from elsewhere (a mail server's refusal names the address: "550 <ana@example.com>: no such user",
and workflow code logs delivery failures), every email address in a log line, structlog's or the standard
library's (workflow.logger), is replaced by `<address>`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

ADDRESS = re.compile(r"[^\s<>@\"',;:()\[\]]+@[^\s<>@\"',;()\[\]]+\.[^\s<>@\"',;()\[\]]+")


def without_addresses(text: str) -> str:
    return ADDRESS.sub("<address>", text) if "@" in text else text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return without_addresses(value)
    if isinstance(value, list | tuple):
        return type(value)(_redact(v) for v in value)
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    return value


def redact_addresses(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: every string value (nested too) without email addresses."""
    return {k: _redact(v) for k, v in event.items()}


class RedactAddresses(logging.Filter):
    """The same for the standard library's records (workflow.logger, the SDK's own lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message:
            record.msg, record.args = without_addresses(message), None
        if record.exc_info and not record.exc_text:  # the traceback's last line quotes the exception's message
            record.exc_text = without_addresses(logging.Formatter().formatException(record.exc_info))
        return True


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=getattr(logging, level.upper(), logging.INFO))
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactAddresses) for f in handler.filters):
            handler.addFilter(RedactAddresses())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_addresses,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )

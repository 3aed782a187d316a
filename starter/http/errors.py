"""The API's one error shape, the table of statuses and codes, and the handlers that answer in it.

    {"error": {"code": "...", "message": "...", "details": [...], "request_id": "..."}}
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from starter.client import (
    ActionRejected,
    Busy,
    EscalationError,
    Forbidden,
    IdConflict,
    InvalidInput,
    LinkRejected,
    OutOfScope,
    TemporalUnavailable,
    TicketNotFound,
    WorkflowTaskFailed,
)
from starter.http.input_guard import BodyProblem
from starter.runtime.validation import allowed_values, problem

log = structlog.get_logger("escalation.api")
RETRY_AFTER_S = 5
OVERLOADED_RETRY_AFTER_S = 1  # a shed request: the bound frees as soon as calls in flight finish


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="where: e.g. ['body', 'subject'] or ['query', 'status']")
    message: str
    type: str = Field(description="the kind of problem, e.g. missing, string_too_long, enum")
    allowed: list[str] | None = Field(None, description="the values allowed here, where there is a fixed set")


class ErrorInfo(BaseModel):
    code: str = Field(description="machine-readable: unauthorized, forbidden, out_of_scope, not_found, id_conflict, "
                                  "method_not_allowed, invalid_request, payload_too_large, rate_limited, busy, "
                                  "workflow_task_failed, temporal_unavailable, overloaded, or a rejected action's "
                                  "reason (ticket_closed, top_tier, unknown_department, ...)")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
    request_id: str


class ErrorBody(BaseModel):
    error: ErrorInfo


class ApiError(HTTPException):
    """An error answered in the one error shape (an HTTPException, so FastAPI re-raises it untouched)."""

    def __init__(self, status: int, code: str, message: str, *, details: list[ErrorDetail] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.message = message
        self.details = details or []


class Shed(ApiError):
    """Back-pressure: the API is at its bound of Temporal calls in flight, and this one was not made."""

    def __init__(self, limit: int) -> None:
        super().__init__(503, "overloaded", f"the API is at its bound of {limit} Temporal calls in flight; this "
                         f"request was not sent to Temporal, retry after {OVERLOADED_RETRY_AFTER_S}s",
                         headers={"Retry-After": str(OVERLOADED_RETRY_AFTER_S)})


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"request body larger than {limit} bytes")


STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                406: "not_acceptable", 409: "conflict", 410: "gone", 413: "payload_too_large", 415: "unsupported_media_type",
                422: "invalid_request", 429: "too_many_requests", 503: "temporal_unavailable"}


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex


def error_response(request: Request, status: int, code: str, message: str, details: list[ErrorDetail] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=ErrorInfo(code=code, message=message, details=details or [], request_id=request_id(request)))
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers)


def validation_details(errors: Sequence[Any], prefix: tuple[str, ...] = ()) -> list[ErrorDetail]:
    out = []
    for err in errors:
        kind = str(err.get("type", "invalid"))
        loc = [*prefix, *(p if isinstance(p, int) else str(p) for p in err.get("loc", ()))]
        if kind == "json_invalid":  # FastAPI puts the character position into loc
            error = (err.get("ctx") or {}).get("error", "")
            out.append(ErrorDetail(loc=["body"], message=f"the body is not valid JSON: {error} (at position {loc[-1]})",
                                   type=kind))
            continue
        message = problem(err)
        if kind == "string_pattern_mismatch" and loc and loc[-1] == "cursor":
            message = "not a cursor this API returned (use next_cursor from the previous page)"
        out.append(ErrorDetail(loc=loc, message=message, type=kind, allowed=allowed_values(err)))
    return out


def summary_of(details: list[ErrorDetail]) -> str:
    """The top-level message: the first few problems in full, so a log line alone says what was wrong."""
    shown = "; ".join(f"{'.'.join(str(p) for p in d.loc)}: {d.message}" for d in details[:3])
    more = f" (and {len(details) - 3} more)" if len(details) > 3 else ""
    return f"invalid input: {shown}{more}"


ERRORS = {
    400: {"model": ErrorBody, "description": "malformed request"},
    401: {"model": ErrorBody, "description": "no valid bearer token (`unauthorized`)"},
    403: {"model": ErrorBody, "description": "the token's role may not do this (`forbidden`), or the ticket is outside "
                                             "an agent's tiers and departments (`out_of_scope`)"},
    404: {"model": ErrorBody, "description": "no such ticket (`not_found`)"},
    409: {"model": ErrorBody, "description": "rejected: the workflow's reason (`ticket_closed`, `top_tier`, "
                                             "`unknown_department`, ...), or `id_conflict`"},
    410: {"model": ErrorBody, "description": "the survey link has expired (`link_expired`)"},
    413: {"model": ErrorBody, "description": "request body too large (`payload_too_large`)"},
    422: {"model": ErrorBody, "description": "invalid input: each bad field with its location, message and allowed values"},
    429: {"model": ErrorBody, "description": "this token (or, without a valid token, this address) sent too many "
                                             "requests (`rate_limited`); see Retry-After"},
    500: {"model": ErrorBody, "description": "the ticket's workflow task keeps failing, a bug in the code the worker "
                                             "runs (`workflow_task_failed`, the message names the failure; retrying "
                                             "does not help until it is fixed), or `internal_error`"},
    503: {"model": ErrorBody, "description": "Temporal unreachable or not answering (`temporal_unavailable`: a write "
                                             "may or may not be applied), or the ticket cannot answer yet, e.g. its "
                                             "workflow task is in flight after a worker restart (`busy`), or the API "
                                             "is at its bound of Temporal calls in flight (`overloaded`: the request "
                                             "was not sent to Temporal, safe to retry); see Retry-After"},
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: ERRORS[c] for c in (401, 422, 429, 503, *codes)}


def escalation_error_response(request: Request, exc: EscalationError) -> JSONResponse:
    """The client's errors as statuses; the code is the client's own."""
    if isinstance(exc, TicketNotFound):
        return error_response(request, 404, "not_found", exc.message)
    if isinstance(exc, ActionRejected | IdConflict):
        return error_response(request, 409, exc.code, exc.message)
    if isinstance(exc, LinkRejected):  # forged: 403; past its expiry: 410 Gone
        return error_response(request, 410 if exc.code == "link_expired" else 403, exc.code, exc.message)
    if isinstance(exc, Forbidden | OutOfScope):
        return error_response(request, 403, exc.code, exc.message)
    if isinstance(exc, InvalidInput):
        details = [ErrorDetail(loc=["body", exc.field], message=exc.message, type="value_error")] if exc.field else None
        return error_response(request, 422, "invalid_request", exc.message, details)
    if isinstance(exc, Busy):  # Temporal answered: not temporal_unavailable
        return error_response(request, 503, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, WorkflowTaskFailed):  # a bug: 500, and no Retry-After since retrying does not help
        log.error("workflow_task_failed", message=exc.message)
        return error_response(request, 500, exc.code, exc.message)
    if isinstance(exc, TemporalUnavailable):
        return error_response(request, 503, "temporal_unavailable", exc.message,
                              headers={"Retry-After": str(RETRY_AFTER_S)})
    return error_response(request, 500, "internal_error", exc.message)


def input_rejected(problems: list[BodyProblem]) -> ApiError:
    """The input guard's refusal (too deep, control characters) as the API's 422."""
    details = [ErrorDetail(loc=list(p.loc), message=p.message, type=p.type) for p in problems]
    return ApiError(422, "invalid_request", summary_of(details), details=details)


def install_error_handlers(app: FastAPI) -> None:
    async def on_escalation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EscalationError)
        return escalation_error_response(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, ApiError):
            return error_response(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # e.g. not UTF-8
            message = "the body is not valid JSON (UTF-8)"
            return error_response(request, 422, "invalid_request", message,
                                  [ErrorDetail(loc=["body"], message=message, type="json_invalid")])
        code = STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        return error_response(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))

    async def on_request_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = validation_details(exc.errors())
        return error_response(request, 422, "invalid_request", summary_of(details), details)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationError)  # a model built in a handler (e.g. a mapped ticket)
        details = validation_details(exc.errors(), ("body",))
        return error_response(request, 422, "invalid_request", summary_of(details), details)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", request_id=request_id(request), error_type=type(exc).__name__)
        return error_response(request, 500, "internal_error", "internal error; quote the request_id when reporting it")

    app.add_exception_handler(EscalationError, on_escalation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)

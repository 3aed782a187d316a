"""Satisfaction surveys: the customer's signed link (no bearer token: the signature is the credential) and the
ticket's survey for people with a token.

`GET /v1/surveys/{token}` shows a small form and changes nothing (mail scanners and link previews open links);
`POST` records the answer (a form post from the page, or JSON). The survey workflow enforces single use; the
client checks the signature (403) and the expiry (410) before Temporal is asked."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError

from starter.client import EscalationError
from starter.client.principal import Permission, Principal
from starter.http.deps import limit_by_address, requires, temporal
from starter.http.errors import error_response, errors, escalation_error_response, summary_of, validation_details
from starter.http.models import TicketIdPath
from workflows.survey import SurveyAnswer, SurveyState

# No bearer token here: the signature is the credential, and the per-address rate limit applies.
router = APIRouter(tags=["surveys"])
public = [Depends(limit_by_address)]
Token = Annotated[str, Path(min_length=10, max_length=512, pattern=r"^[A-Za-z0-9_.-]+$",
                            description="the signed token from the survey link")]
# No script at all; the page's one style block is allowed by its hash-free 'unsafe-inline' style only.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                           "frame-ancestors 'none'; base-uri 'none'",
                "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
STYLE = ("body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
         "fieldset{border:0;padding:0}label{margin-right:1rem}textarea{width:100%}"
         "button{font-size:1rem;padding:.4rem 1.2rem;margin-top:1rem}")


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{escape(title)}</title><style>{STYLE}</style>'
            f"</head><body><main><h1>{escape(title)}</h1>{body}</main></body></html>")
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def form(token: str, problem: str = "") -> str:
    scores = "".join(f'<label><input type="radio" name="score" value="{n}" required> {n}</label>' for n in range(1, 6))
    alert = f'<p role="alert">{escape(problem)}</p>' if problem else ""
    return (f'{alert}<form method="post">'
            '<fieldset><legend>How satisfied are you with how we handled your request? (1 = not at all, '
            f'5 = very)</legend>{scores}</fieldset>'
            '<p><label for="comment">Anything you want to tell us (optional)</label><br>'
            '<textarea id="comment" name="comment" rows="4" maxlength="2000"></textarea></p>'
            '<button type="submit">Send</button></form>')


def answered_page(s: SurveyState, status: int = 200) -> HTMLResponse:
    assert s.answer is not None
    return page("Thank you", f"<p>We recorded your answer: {s.answer.score} of 5.</p>", status)


def problem_page(request: Request, exc: EscalationError) -> HTMLResponse:
    """A refused link as a page a customer can read, with the status an API caller would get."""
    status = escalation_error_response(request, exc).status_code
    titles = {403: "This link is not valid", 404: "Survey not found", 409: "Already answered",
              410: "This survey has closed"}
    return page(titles.get(status, "Something went wrong"), f"<p>{escape(exc.message)}</p>", status)


def wants_html(request: Request) -> bool:
    """A browser (it asks for text/html) gets pages; any other caller the API's JSON and error shape."""
    return "text/html" in request.headers.get("accept", "")


BOTH = {"content": {"text/html": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"$ref": "#/components/schemas/SurveyState"}}},
        "description": "the form (a browser, Accept: text/html) or the survey's state (JSON)"}


@router.get("/v1/surveys/{token}", response_model=SurveyState, responses={200: BOTH, **errors(403, 404, 409, 410)},
            summary="The survey form (reading changes nothing)", dependencies=public)
async def survey_form(request: Request, token: Token) -> Any:
    """The form a customer's link opens. Reading it records nothing: mail scanners open links too."""
    try:
        state = await temporal(request, lambda c: c.survey_by_link(token))
    except EscalationError as exc:
        if not wants_html(request):
            raise
        return problem_page(request, exc)
    if not wants_html(request):
        return JSONResponse(state.model_dump(mode="json", exclude={"note"}), headers=PAGE_HEADERS)
    if state.answer is not None:
        return answered_page(state, 409)
    return page("How did we do?", form(token))


async def _answer_from(request: Request) -> SurveyAnswer:
    raw = await request.body()
    if "application/json" in request.headers.get("content-type", ""):
        return SurveyAnswer.model_validate_json(raw)
    fields = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
    return SurveyAnswer.model_validate({"score": fields.get("score"), "comment": fields.get("comment", "")})


@router.post("/v1/surveys/{token}", response_model=SurveyState, responses={200: BOTH, **errors(403, 404, 409, 410)},
             summary="Answer the survey (form post or JSON {score, comment}; once)", dependencies=public,
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": SurveyAnswer.model_json_schema()},
                 "application/x-www-form-urlencoded": {"schema": SurveyAnswer.model_json_schema()}}}})
async def answer_survey(request: Request, token: Token) -> Any:
    """Record the answer: score 1-5 and an optional comment. A second answer is 409, a late one 410, a forged
    link 403; nothing is recorded in those cases."""
    html = wants_html(request)
    try:
        answer = await _answer_from(request)
    except ValidationError as exc:
        details = validation_details(exc.errors(), ("body",))
        if html:
            return page("How did we do?", form(token, "Please choose a score from 1 to 5."), 422)
        return error_response(request, 422, "invalid_request", summary_of(details), details)
    try:
        state = await temporal(request, lambda c: c.answer_survey(token, answer))
    except EscalationError as exc:
        if not html:
            raise
        return problem_page(request, exc)
    if html:
        return answered_page(state)
    return JSONResponse(state.model_dump(mode="json", exclude={"note"}), headers=PAGE_HEADERS)


@router.get("/v1/tickets/{ticket_id}/survey", response_model=SurveyState | None, responses=errors(403, 404),
            summary="A closed ticket's satisfaction survey")
async def ticket_survey(request: Request, ticket_id: TicketIdPath,
                        who: Annotated[Principal, Depends(requires(Permission.read))]) -> Any:
    """The survey sent when the ticket closed (null: none was sent, e.g. no customer contact)."""
    return await temporal(request, lambda c: c.survey(ticket_id, principal=who))


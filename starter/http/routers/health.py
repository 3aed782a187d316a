"""Liveness and readiness."""


from typing import Any

from fastapi import APIRouter, Request

from starter.client import TemporalUnavailable
from starter.http.deps import Api, temporal
from starter.http.errors import ERRORS, RETRY_AFTER_S, ErrorDetail, error_response
from starter.http.models import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: ERRORS[503]})
async def readyz(request: Request, api: Api) -> Any:
    """Temporal is reachable and a worker polls the task queue."""
    try:
        pollers = await temporal(request, lambda c: c.workflow_pollers(), shed=False)  # never shed
    except TemporalUnavailable as exc:
        return error_response(request, 503, "not_ready", f"Temporal unreachable: {exc.message}",
                              [ErrorDetail(loc=["temporal"], message="unreachable", type="temporal")],
                              headers={"Retry-After": str(RETRY_AFTER_S)})
    tq = api.settings.escalation_task_queue
    if pollers == 0:
        return error_response(request, 503, "not_ready", f"no worker polls task queue {tq!r}",
                              [ErrorDetail(loc=["worker"], message=f"no poller on {tq!r}", type="worker")],
                              headers={"Retry-After": str(RETRY_AFTER_S)})
    return Health(status="ready", checks={"temporal": "ok", "worker": f"{pollers} poller(s) on task queue {tq!r}"})

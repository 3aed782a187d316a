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
    """Temporal is reachable and a live worker serves the task queue: one that sent Temporal a worker heartbeat in
    the last 10 s (a killed worker is noticed within that, whatever its polls look like). A server without worker
    heartbeats (ListWorkers off): a worker that polled within 2 minutes, as before."""
    tq = api.settings.escalation_task_queue
    try:
        live = await temporal(request, lambda c: c.live_workers(), shed=False)  # readiness is never shed
        how = "heartbeating worker(s)"
        if live is None:
            live = await temporal(request, lambda c: c.workflow_pollers(), shed=False)
            how = "poller(s) (the server offers no worker heartbeats)"
    except TemporalUnavailable as exc:
        return error_response(request, 503, "not_ready", f"Temporal unreachable: {exc.message}",
                              [ErrorDetail(loc=["temporal"], message="unreachable", type="temporal")],
                              headers={"Retry-After": str(RETRY_AFTER_S)})
    if live == 0:
        return error_response(request, 503, "not_ready", f"no live worker on task queue {tq!r}",
                              [ErrorDetail(loc=["worker"], message=f"no worker heartbeat or poller on {tq!r}",
                                           type="worker")],
                              headers={"Retry-After": str(RETRY_AFTER_S)})
    return Health(status="ready", checks={"temporal": "ok", "worker": f"{live} {how} on task queue {tq!r}"})

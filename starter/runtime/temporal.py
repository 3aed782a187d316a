"""The one home of the Temporal setup: connecting, the data converter, the workflow sandbox, the registries.

The worker, every client (CLI, API), the auditor's replayer, the tests and the bench use this module, so a
change here (a payload codec, a new workflow type, a new activity) is made once.
"""

from __future__ import annotations

import compileall
import dataclasses
import gc
import inspect
import logging
import pkgutil
from collections.abc import Sequence
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import structlog
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverter
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Interceptor, Replayer, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.delivery import ChatChannel, Deliverer, EmailChannel, WebhookChannel
from activities.incidents import IncidentFanOut
from activities.knowledge_base import KnowledgeBase
from activities.notify import Notifier, Outbox
from activities.prepare import Preparer
from activities.rotation import EscalationManagers
from activities.sponsorship import Sponsorships
from starter.runtime.archive import Archiver
from starter.runtime.codec import EncryptionCodec, HistoryFailureConverter, Keyring, keyring
from starter.runtime.directory_file import DEFAULT_TEMPLATES, directory_path, load_directory
from starter.runtime.sdk_private import activity_name
from starter.runtime.settings import Settings, customer_channels, settings, survey_secret
from workflows.archive.workflow import ArchiveWorkflow
from workflows.common.directory import resolve
from workflows.incident.workflow import IncidentWorkflow
from workflows.postmortem.workflow import PostmortemWorkflow
from workflows.rotation.workflow import RotationWorkflow
from workflows.sponsorship.workflow import SponsorshipWorkflow
from workflows.survey.workflow import SurveyWorkflow
from workflows.ticket import FindEscalationManager
from workflows.ticket.workflow import TicketWorkflow

log = structlog.get_logger("escalation.runtime")

# Every workflow type and activity the engine runs; a new one is registered here and nowhere else.
WORKFLOWS: list[type] = [TicketWorkflow, RotationWorkflow, SurveyWorkflow, SponsorshipWorkflow, IncidentWorkflow,
                        PostmortemWorkflow, ArchiveWorkflow]
# The task queue every worker and client uses unless ESCALATION_TASK_QUEUE says otherwise (written once, in Settings).
DEFAULT_TASK_QUEUE: str = Settings.model_fields["escalation_task_queue"].default


def activities(s: Settings) -> list[Any]:
    """The activities, each built once with what the settings choose for it (the delivery sink, ...)."""
    outbox = Outbox(Path(s.escalation_outbox))
    preparer = Preparer(directory_path(s.escalation_directory), load_directory,
                        Path(s.escalation_templates or DEFAULT_TEMPLATES), s.escalation_public_url, s.escalation_mail_domain,
                        lambda: survey_secret(s), customer_channels(s))
    http = httpx.AsyncClient(timeout=s.escalation_delivery_timeout_s, follow_redirects=False)
    email = (EmailChannel(s.escalation_smtp_url, s.escalation_mail_from, s.escalation_mail_domain,
                          s.escalation_delivery_timeout_s) if s.escalation_smtp_url else None)
    deliverer = Deliverer(outbox, email, WebhookChannel(s.escalation_webhook_secret, http), ChatChannel(http))

    def managers_on_duty(e: FindEscalationManager) -> list[str]:
        return resolve(preparer.directory(), "escalation_manager", customer_id=e.customer_id, tier=e.tier,
                       department=e.department, at=e.at).people

    def sponsor_of(account_id: str) -> str | None:
        account = preparer.directory().accounts.get(account_id)
        return account.executive_sponsor if account else None

    return [Notifier(outbox).notify, preparer.prepare, deliverer.deliver,
            EscalationManagers(managers_on_duty).assign, Sponsorships(sponsor_of).enrol,
            IncidentFanOut(s.escalation_incident_fanout_concurrency, s.escalation_incident_fanout_rate).fan_out,
            KnowledgeBase(Path(s.escalation_kb_dir)).publish,
            Archiver(Path(s.escalation_archive_dir), Path(s.escalation_audit_signing_key)).archive]


class SharedPayloadConverter(PydanticPayloadConverter):
    """The pydantic payload converter, one per process. The SDK builds a payload converter for every workflow run,
    each with its own cache of pydantic TypeAdapters (about 5 KB kept per cached ticket, and the adapters built
    again for every run and replay). A TypeAdapter depends only on its type and the converter keeps nothing per
    run (its cache is thread-safe), so every run shares this one."""

    _shared: SharedPayloadConverter | None = None

    def __new__(cls) -> SharedPayloadConverter:
        if cls._shared is None:
            cls._shared = super().__new__(cls)
            super().__init__(cls._shared)
        return cls._shared

    def __init__(self) -> None:  # built once, in __new__
        pass


def data_converter(keys: Keyring | None = None) -> DataConverter:
    """Pydantic models on the wire (datetimes stay datetimes), every payload encrypted (starter/runtime/codec.py:
    this process's key ring, or `keys`), failure messages and stack traces too (moved into an encoded attribute: an
    SMTP error names an address; a query's failure, never in history, stays readable for its caller)."""
    return dataclasses.replace(pydantic_data_converter, payload_converter_class=SharedPayloadConverter,
                               payload_codec=EncryptionCodec(keys or keyring()),
                               failure_converter_class=HistoryFailureConverter)


@cache
def pure_modules() -> tuple[str, ...]:
    """Every module under workflows/ except the workflow shells (`<domain>/workflow.py`): the pure core.

    It is deterministic, side-effect free at import and read-only at run time, so the sandbox passes it through
    (loaded once per worker, not once per run: pydantic would build every model class again on each import).
    `tests/unit/test_workflow_purity.py` checks that what is listed here really is pure."""
    out = []
    for m in pkgutil.walk_packages(workflows.__path__, prefix="workflows."):
        if not m.ispkg and m.name.rpartition(".")[2] != "workflow":
            out.append(m.name)
    return tuple(sorted(out))


# Passed through whole: the pure core and the workflow shells. The sandbox re-imported a shell for every run it
# started or replayed (about 100 KB of code objects, classes and handler definitions kept per cached run, most of
# a cached ticket's Python memory: bench/memory_per_ticket.py). A shell keeps no module-level state and reads no
# clock, random or I/O (the purity scan, tests/unit/test_workflow_purity.py, covers every module under
# workflows/), so one copy serves every run. The price: a passed-through module's imports are not the sandbox's,
# so a clock read in a shell is refused only by that scan (run by `make lint`), not at run time; builtins such as
# open() are still restricted.
PASSED_THROUGH = ("workflows",)


def workflow_runner(*, reimport_shells: bool = False, also: Sequence[str] = (), sandboxed: bool = True,
                    ) -> WorkflowRunner:
    """The sandbox every worker and replayer uses (the same code path for a live run and an auditor's replay).
    `reimport_shells`: the sandbox as it was before, each run with its own copy of its shell (the memory bench's
    before figure, and the tests' control). `also`: more modules passed through (the bench's bare workflow, so
    that it is measured as the shells run). `sandboxed=False`: no sandbox, only for bench/replay_modes.py's
    comparison (what the sandbox costs a replay)."""
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    passed = pure_modules() if reimport_shells else (*pure_modules(), *PASSED_THROUGH)
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*passed, *also))


async def connect(address: str | None = None, namespace: str | None = None, *, keys: Keyring | None = None) -> Client:
    s = settings()
    return await Client.connect(address or s.temporal_address, namespace=namespace or s.temporal_namespace,
                                data_converter=data_converter(keys))


def replayer(workflows: Sequence[type] = (), *, keys: Keyring | None = None, interceptors: Sequence[Interceptor] = (),
             reimport_shells: bool = False, also: Sequence[str] = (), sandboxed: bool = True) -> Replayer:
    """Replays a history of any registered workflow type (or of `workflows`), as the worker would run it (`also`,
    `sandboxed`: as in workflow_runner, for the bench's bare workflow)."""
    # Its failures are never written anywhere: they stay readable (a missing key is named, not "Encoded failure").
    converter = dataclasses.replace(data_converter(keys), failure_converter_class=DefaultFailureConverter)
    runner = workflow_runner(reimport_shells=reimport_shells, also=also, sandboxed=sandboxed)
    return Replayer(workflows=list(workflows) or WORKFLOWS, workflow_runner=runner, data_converter=converter,
                    runtime=replay_runtime(), interceptors=interceptors)


@cache
def replay_runtime() -> Runtime:
    """The core SDK logs a divergence to stdout by default; the replayer's runtime hands its lines to Python logging
    (stderr) instead, so `escalation audit replay --json` prints one JSON document (the report names the event)."""
    core_log = logging.getLogger("temporalio.core.replay")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=LogForwardingConfig(logger=core_log))))


def cache_bytecode(workflow_types: Sequence[type]) -> None:
    """A sandbox that imports a workflow's module afresh for every new run (one not passed through: the bench's
    `reimport_shells` worker) would, without cached bytecode (e.g. under PYTHONDONTWRITEBYTECODE, or a fresh
    checkout), compile its source every time; compile it once here, unless it is already up to date (a container
    image ships it, compiled at build time)."""
    for wf in workflow_types:
        source = inspect.getsourcefile(wf)
        if source and not compileall.compile_file(source, quiet=2):
            log.debug("bytecode_not_cached", file=source, hint="the sandbox compiles this module for every new run")


def tune_gc(young_objects: int) -> None:
    """The collector of a worker process. The objects of startup (modules, classes, the SDK) live as long as the
    process: they are frozen out of every collection, so a full collection scans only what came later.
    `young_objects` > 0 raises the young generation's threshold (Python's default: 700). Measured at 10,000 open
    tickets and the default cache (`make bench N=10000 SMTP=1 --worker-cmd bench/gc_worker.py`): at 700, about 70
    full collections of up to 0.9 s in a run (breach p99 1.09 s); at 20,000, 4 of them (breach p99 0.27 s) but
    the worker held 988 MB instead of 398 MB and one full collection took 3.7 s. So it is off by default."""
    if young_objects > 0:
        gc.set_threshold(young_objects, 10, 10)
    gc.collect()
    gc.freeze()


# A cached ticket's next task goes to the sticky queue of the worker that ran its last one; if that worker is dead,
# the task waits there this long before the server moves it to the shared queue. The SDK's 10 s put 10 s on every
# deadline due in the first seconds after a worker's death (bench/recovery.py measures it); a live worker starts its
# sticky tasks within ~0.1 s, so 3 s is slack enough and costs a replay only when a worker is stalled that long.
STICKY_TIMEOUT = timedelta(seconds=3)


def build_worker(client: Client, task_queue: str | None = None, *, workflows: Sequence[type] = (),
                 replace_activities: Sequence[Any] = (), **options: Any) -> Worker:
    """A worker with every registered workflow and activity (tests may swap the activities, all of them with
    `activities=` or some by name with `replace_activities=`; the bench's baseline worker runs its own workflow in
    the same sandbox, with the same options)."""
    s = settings()
    workflows = list(workflows) or WORKFLOWS
    cache_bytecode(workflows)
    options.setdefault("max_cached_workflows", s.escalation_max_cached_workflows)
    options.setdefault("workflow_runner", workflow_runner())
    options.setdefault("graceful_shutdown_timeout", timedelta(seconds=10))  # let in-flight notifications finish
    options.setdefault("sticky_queue_schedule_to_start_timeout", STICKY_TIMEOUT)
    if "activities" not in options:  # built only when asked for: the outbox opens its file
        replaced = {activity_name(a): a for a in replace_activities}
        options["activities"] = [replaced.pop(activity_name(a), a) for a in activities(s)] + list(replaced.values())
    return Worker(client, task_queue=task_queue or s.escalation_task_queue, workflows=workflows, **options)

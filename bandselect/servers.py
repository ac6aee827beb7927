"""Server mode: start and stop Prefect server, MLflow server and a Dask scheduler + worker on 127.0.0.1.

Usage::

    python -m bandselect.servers start [--dir .servers] [--dask-workers 2] \
        [--worker-pool bandselect-process [--prefect-workers 2 --prefect-worker-limit 1]]
    eval "$(python -m bandselect.servers env --dir .servers)"   # PREFECT_API_URL, MLFLOW_TRACKING_URI, ...
    python -m bandselect.servers status [--dir .servers]
    python -m bandselect.servers stop [--dir .servers]

Each service runs in its own process group (``start_new_session``) with its log under ``<dir>/logs`` and a
pid file under ``<dir>/pids``; ``<dir>/servers.json`` records pids, process start times (so a recycled pid
is never killed), ports and URLs. ``stop`` sends SIGTERM to each group and SIGKILL after a timeout: an idle
``prefect worker`` ignores a single SIGTERM for 30 s or more.

Services bind 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bandselect.errors import ConfigError, ResourceError

__all__ = [
    "DEFAULT_DIRECTORY",
    "SERVICE_NAMES",
    "ServerConfig",
    "ServerError",
    "ServiceRecord",
    "configure_parser",
    "environment",
    "main",
    "run_command",
    "running_environment",
    "start_servers",
    "status",
    "stop_servers",
]

DEFAULT_DIRECTORY = ".servers"
STATE_FILE = "servers.json"
ENV_FILE = "env.sh"
LOCALHOST = "127.0.0.1"

#: Seconds between a Prefect worker's polls for scheduled runs (Prefect's default is 10).
WORKER_QUERY_SECONDS = 2

SERVICE_NAMES = ("prefect", "mlflow", "dask-scheduler", "dask-worker", "prefect-worker")
"""Start order; ``stop`` goes in reverse. ``prefect-worker`` starts only with a work pool; further Prefect
workers are ``prefect-worker-2``, ``prefect-worker-3``, ...; the ``dask-worker`` service is one
``dask worker --nworkers N`` process group holding the N worker processes."""

ENV_DASK_ADDRESS = "BANDSELECT_DASK_ADDRESS"
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


class ServerError(ResourceError):
    """A server did not start, did not become healthy, or could not be stopped."""


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the servers run.

    Parameters
    ----------
    directory
        State folder: Prefect home, MLflow database and artifacts, Dask scratch, logs, pid files.
    host
        Interface to bind; ``127.0.0.1`` unless you mean to expose the services.
    prefect_port, mlflow_port, dask_port
        Ports of the Prefect API/UI, the MLflow server and the Dask scheduler.
    dask_dashboard_port
        Port of the Dask dashboard (needs ``bokeh``); ``None`` disables it.
    dask_workers
        Dask worker processes (``dask worker --nworkers``): statistics jobs spread their chunks over them.
    dask_worker_threads
        Threads of each Dask worker process.
    worker_pool
        When set, also start ``prefect worker start --pool <worker_pool> --type process`` (the pool is
        created if missing) so deployments of that pool run.
    prefect_workers
        Prefect process workers on that pool (each runs flow runs as subprocesses).
    prefect_worker_limit
        Flow runs each Prefect worker runs at once (``--limit``); None: no limit.
    with_dask
        Start the Dask scheduler and workers.
    """

    directory: Path
    host: str = LOCALHOST
    prefect_port: int = 4200
    mlflow_port: int = 5000
    dask_port: int = 8786
    dask_dashboard_port: int | None = 8787
    dask_worker_threads: int = 1
    worker_pool: str | None = None
    with_dask: bool = True
    dask_workers: int = 1
    prefect_workers: int = 1
    prefect_worker_limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory).resolve())
        ports = {
            "prefect_port": self.prefect_port,
            "mlflow_port": self.mlflow_port,
            "dask_port": self.dask_port,
            "dask_dashboard_port": self.dask_dashboard_port,
        }
        for name, port in ports.items():
            if port is not None and not (isinstance(port, int) and 0 < port < 65536):
                raise ConfigError(
                    name,
                    expected="an integer port in 1..65535",
                    found=repr(port),
                    fix=f"pass --{name.replace('_', '-')} 4200 or similar",
                )
        used = [port for port in ports.values() if port is not None]
        if len(set(used)) != len(used):
            raise ConfigError(
                "server ports", expected="distinct ports", found=ports, fix="choose distinct ports"
            )
        counts = {
            "dask_worker_threads": self.dask_worker_threads,
            "dask_workers": self.dask_workers,
            "prefect_workers": self.prefect_workers,
            "prefect_worker_limit": 1 if self.prefect_worker_limit is None else self.prefect_worker_limit,
        }
        for name, count in counts.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ConfigError(name, expected="an integer >= 1", found=repr(count), fix="pass 1 or more")

    @property
    def client_host(self) -> str:
        """Address clients use: the bound host, or 127.0.0.1 when bound to all interfaces."""
        return LOCALHOST if self.host in {"0.0.0.0", "::", ""} else self.host

    @property
    def prefect_api_url(self) -> str:
        return f"http://{self.client_host}:{self.prefect_port}/api"

    @property
    def prefect_ui_url(self) -> str:
        return f"http://{self.client_host}:{self.prefect_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.client_host}:{self.mlflow_port}"

    @property
    def dask_address(self) -> str:
        return f"tcp://{self.client_host}:{self.dask_port}"

    @property
    def dask_dashboard_url(self) -> str | None:
        if self.dask_dashboard_port is None:
            return None
        return f"http://{self.client_host}:{self.dask_dashboard_port}/status"

    def services(self) -> list[str]:
        """Names of the services this config starts, in start order."""
        names = ["prefect", "mlflow"]
        if self.with_dask:
            names += ["dask-scheduler", "dask-worker"]
        if self.worker_pool:
            names += self.prefect_worker_names()
        return names

    def prefect_worker_names(self) -> list[str]:
        """Service names of the Prefect workers: ``prefect-worker``, ``prefect-worker-2``, ..."""
        if not self.worker_pool:
            return []
        return ["prefect-worker", *(f"prefect-worker-{i}" for i in range(2, self.prefect_workers + 1))]

    def prefect_worker_label(self, service: str) -> str:
        """The name a Prefect worker service registers with the pool (``bandselect-<pool>[-i]``)."""
        suffix = service.removeprefix("prefect-worker")
        return f"bandselect-{self.worker_pool}{suffix}"


@dataclass
class ServiceRecord:
    """One started service, as stored in ``servers.json``."""

    name: str
    pid: int
    create_time: float
    command: list[str]
    log: str
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def environment(config: ServerConfig) -> dict[str, str]:
    """Environment variables that point flows and clients at the servers.

    Parameters
    ----------
    config
        The server configuration.

    Returns
    -------
    dict of str to str
        ``PREFECT_API_URL``, ``MLFLOW_TRACKING_URI``, ``BANDSELECT_DASK_ADDRESS`` (with Dask) and the
        telemetry switches.
    """
    env = {"PREFECT_API_URL": config.prefect_api_url, "MLFLOW_TRACKING_URI": config.mlflow_url}
    if config.with_dask:
        env[ENV_DASK_ADDRESS] = config.dask_address
    env.update(TELEMETRY_OFF)
    return env


def _exports(config: ServerConfig) -> str:
    """:func:`environment` as shell ``export`` lines (``servers.env`` and ``start``/``env`` output)."""
    return "".join(f"export {key}={value}\n" for key, value in environment(config).items())


#: The scheduler and the workers import what a statistics graph names at their start, not on the first
#: job (:mod:`bandselect.stats.dask_preload`: that job took 5.4 s instead of 0.7 s).
DASK_PRELOAD = ("--preload", "bandselect.stats.dask_preload")


def _commands(config: ServerConfig) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Command line and extra environment of each service, run with this interpreter."""
    python = sys.executable
    root = config.directory
    # The UI's scripts call the API at PREFECT_UI_API_URL, which defaults to port 4200: on any other port
    # the pages load and then show "Can't connect to Server API" without it.
    prefect_env = {
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_UI_API_URL": config.prefect_api_url,
        "PREFECT_UI_URL": config.prefect_api_url.removesuffix("/api"),
    }
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "prefect": (
            [python, "-m", "prefect", "server", "start",
             "--host", config.host, "--port", str(config.prefect_port)],
            prefect_env,
        ),
        "mlflow": (
            [
                python, "-m", "mlflow", "server",
                "--host", config.host,
                "--port", str(config.mlflow_port),
                "--workers", "1",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
                "--artifacts-destination", str(root / "mlflow" / "artifacts"),
            ],
            # MLflow 3 otherwise starts a job runner and seven huey consumers (GenAI jobs) we never use.
            {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        ),
    }  # fmt: skip
    if config.with_dask:
        dashboard = (
            ["--dashboard-address", f"{config.host}:{config.dask_dashboard_port}"]
            if config.dask_dashboard_port is not None
            # The scheduler's HTTP server (health, metrics) listens even without the dashboard: keep it local.
            else ["--no-dashboard", "--dashboard-address", f"{config.host}:0"]
        )
        commands["dask-scheduler"] = (
            [
                python,
                "-m",
                "dask",
                "scheduler",
                "--host",
                config.host,
                "--port",
                str(config.dask_port),
                *dashboard,
                *DASK_PRELOAD,
            ],
            {},
        )
        commands["dask-worker"] = (
            [
                python, "-m", "dask", "worker", config.dask_address,
                "--host", config.host,
                "--nworkers", str(config.dask_workers),
                "--nthreads", str(config.dask_worker_threads),
                "--no-dashboard",
                "--dashboard-address", f"{config.host}:0",
                "--local-directory", str(root / "dask"),
                "--name", "bandselect-worker",
                *DASK_PRELOAD,
            ],
            {},
        )  # fmt: skip
    limit = [] if config.prefect_worker_limit is None else ["--limit", str(config.prefect_worker_limit)]
    for service in config.prefect_worker_names():
        commands[service] = (
            [
                python, "-m", "prefect", "worker", "start",
                "--pool", str(config.worker_pool),
                "--type", "process",
                "--name", config.prefect_worker_label(service),
                *limit,
            ],
            # A local API answers a poll in milliseconds: a submitted run waits at most 2 s for a free
            # worker instead of Prefect's 10 s, so runs queued together start together.
            {**prefect_env, **environment(config), "PREFECT_WORKER_QUERY_SECONDS": str(WORKER_QUERY_SECONDS)},
        )  # fmt: skip
    return commands


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do: a port whose old connections linger in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, host: str = LOCALHOST) -> list[int]:
    """``count`` distinct ports free right now on ``host`` (for tests; another process may take them later).

    Every socket stays bound until all are picked: ports picked one at a time may repeat, since the
    kernel can hand out a just-released port again.
    """
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port(host: str = LOCALHOST) -> int:
    """A port free right now on ``host`` (for tests; another process may take it later)."""
    return free_ports(1, host)[0]


def _http_ok(url: str, timeout_s: float = 2.0, data: bytes | None = None) -> bytes | None:
    """Body of a 200 answer, or ``None`` while the server is not answering yet."""
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read() if response.status == 200 else None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def _tcp_open(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _dask_workers(address: str, timeout_s: float = 5.0) -> int | None:
    """Number of workers registered with the scheduler, or ``None`` when it does not answer."""
    from distributed import Client

    try:
        with Client(address, timeout=timeout_s, set_as_default=False) as client:
            return len(client.scheduler_info(n_workers=-1)["workers"])
    except (OSError, TimeoutError):
        return None


def _prefect_worker_registered(config: ServerConfig, service: str) -> bool:
    body = _http_ok(f"{config.prefect_api_url}/work_pools/{config.worker_pool}/workers/filter", data=b"{}")
    if body is None:
        return False
    label = config.prefect_worker_label(service)
    return any(worker.get("name") == label for worker in json.loads(body))


def _health_checks(config: ServerConfig) -> dict[str, Callable[[], bool]]:
    host = config.client_host
    checks: dict[str, Callable[[], bool]] = {
        "prefect": lambda: _http_ok(f"{config.prefect_api_url}/health") is not None,
        "mlflow": lambda: _http_ok(f"{config.mlflow_url}/health") is not None,
        "dask-scheduler": lambda: _tcp_open(host, config.dask_port),
        "dask-worker": lambda: (_dask_workers(config.dask_address) or 0) >= config.dask_workers,
    }
    for service in config.prefect_worker_names():
        checks[service] = lambda service=service: _prefect_worker_registered(config, service)
    return checks


def _state_path(directory: Path) -> Path:
    return Path(directory).resolve() / STATE_FILE


def _read_state(directory: Path) -> tuple[ServerConfig | None, dict[str, ServiceRecord]]:
    """The recorded config and services; ``(None, {})`` when nothing was started.

    Raises
    ------
    ServerError
        ``servers.json`` exists but is not what ``start`` writes (truncated, edited, another tool's).
    """
    path = _state_path(directory)
    if not path.exists():
        return None, {}
    try:
        state = json.loads(path.read_text())
        config = ServerConfig(**state["config"])
        records = {name: ServiceRecord(**record) for name, record in state["services"].items()}
    except (OSError, ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise ServerError(
            f"server state {path}",
            expected="the servers.json written by `servers start`",
            found=f"an unreadable file ({type(error).__name__}: {error})",
            fix=f"run `python -m bandselect.servers stop --dir {directory}` (it stops what runs there "
            "without the file), then start again",
        ) from error
    return config, records


def _write_state(config: ServerConfig, records: Mapping[str, ServiceRecord]) -> None:
    state = {
        "config": {**asdict(config), "directory": str(config.directory)},
        "services": {name: asdict(record) for name, record in records.items()},
        "environment": environment(config),
    }
    path = _state_path(config.directory)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(path)
    pids = config.directory / "pids"
    pids.mkdir(exist_ok=True)
    for name, record in records.items():
        (pids / f"{name}.pid").write_text(f"{record.pid}\n")
    (config.directory / ENV_FILE).write_text(_exports(config))


def _live_process(record: ServiceRecord) -> psutil.Process | None:
    """The recorded process if it still runs (same pid *and* start time), else ``None``."""
    try:
        process = psutil.Process(record.pid)
        if abs(process.create_time() - record.create_time) > 1.0:
            return None  # the pid was recycled by another process
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except psutil.NoSuchProcess:
        return None


def _log_tail(path: str, n_lines: int = 25) -> str:
    lines = Path(path).read_text(errors="replace").splitlines() if Path(path).exists() else []
    return "\n".join(lines[-n_lines:])


def _spawn(
    name: str, command: list[str], extra_env: Mapping[str, str], config: ServerConfig
) -> ServiceRecord:
    logs = config.directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    env = {**os.environ, **TELEMETRY_OFF, **extra_env}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.directory,
            start_new_session=True,  # own process group: stop() signals the server and its children
        )
    create_time = psutil.Process(process.pid).create_time()
    urls = {
        "prefect": config.prefect_ui_url,
        "mlflow": config.mlflow_url,
        "dask-scheduler": config.dask_address,
    }
    extra: dict[str, Any] = {}
    if name == "dask-scheduler" and config.dask_dashboard_url:
        extra["dashboard"] = config.dask_dashboard_url
    if name == "prefect":
        extra["api"] = config.prefect_api_url
    if name.startswith("prefect-worker"):
        extra["pool"] = config.worker_pool
        extra["worker_name"] = config.prefect_worker_label(name)
    if name == "dask-worker":
        extra["processes"] = config.dask_workers
    return ServiceRecord(name, process.pid, create_time, command, str(log_path), urls.get(name), extra)


def start_servers(
    config: ServerConfig,
    *,
    timeout_s: float = 180.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, ServiceRecord]:
    """Start the services and wait until each answers its health check.

    Parameters
    ----------
    config
        Ports, host and state folder.
    timeout_s
        Longest wait for all services to become healthy (a fresh Prefect database takes ~15 s).
    progress
        Called with one line per event (``print`` to stderr in the CLI).

    Returns
    -------
    dict of str to ServiceRecord
        The started services by name.

    Raises
    ------
    ServerError
        Services of this folder already run, a port is taken, a process exits early or a health check
        times out. Whatever was started is stopped again before raising.
    """
    say = progress or (lambda line: None)
    _, running = _read_state(config.directory)
    alive = [name for name, record in running.items() if _live_process(record) is not None]
    if alive:
        raise ServerError(
            f"servers of {config.directory}",
            expected="none running",
            found=f"running: {', '.join(alive)}",
            fix=f"python -m bandselect.servers stop --dir {config.directory}",
        )
    ports = {"prefect": config.prefect_port, "mlflow": config.mlflow_port}
    if config.with_dask:
        ports["dask-scheduler"] = config.dask_port
        if config.dask_dashboard_port is not None:
            ports["dask-dashboard"] = config.dask_dashboard_port
    taken = {name: port for name, port in ports.items() if not _port_free(config.host, port)}
    if taken:
        raise ServerError(
            f"ports on {config.host}",
            expected="free ports",
            found=f"in use: {taken}",
            fix="stop what uses them or pick other ports (--prefect-port, --mlflow-port, --dask-port, ...)",
        )
    if config.host != LOCALHOST:
        say(f"warning: binding {config.host}: the services are reachable from other machines, without auth")
    for folder in ("prefect", "mlflow/artifacts", "dask", "logs"):
        (config.directory / folder).mkdir(parents=True, exist_ok=True)

    commands = _commands(config)
    checks = _health_checks(config)
    records: dict[str, ServiceRecord] = {}
    try:
        for name in config.services():
            if name == "prefect-worker":  # the first worker creates the pool: the API must answer
                _wait_healthy(records, ["prefect"], checks, time.monotonic() + timeout_s, say)
            elif name.startswith("prefect-worker-"):  # the others join the pool the first one made
                _wait_healthy(records, ["prefect-worker"], checks, time.monotonic() + timeout_s, say)
            command, extra_env = commands[name]
            records[name] = _spawn(name, command, extra_env, config)
            _write_state(config, records)
            say(f"started {name} (pid {records[name].pid}), log {records[name].log}")
        _wait_healthy(records, list(records), checks, time.monotonic() + timeout_s, say)
    except BaseException:
        stop_servers(config.directory, progress=say)
        raise
    return records


def _wait_healthy(
    records: Mapping[str, ServiceRecord],
    names: Iterable[str],
    checks: Mapping[str, Callable[[], bool]],
    deadline: float,
    say: Callable[[str], None],
) -> None:
    pending = [name for name in names if not records[name].extra.get("healthy")]
    while pending:
        for name in list(pending):
            record = records[name]
            if _live_process(record) is None:
                raise ServerError(
                    f"{name} server",
                    expected="a running process",
                    found=f"it exited; last lines of {record.log}:\n{_log_tail(record.log)}",
                    fix="read the log; a port taken by another program is the usual cause",
                )
            if checks[name]():
                record.extra["healthy"] = True
                pending.remove(name)
                say(f"{name} healthy{f' at {record.url}' if record.url else ''}")
        if pending and time.monotonic() > deadline:
            tails = "\n".join(f"--- {name}:\n{_log_tail(records[name].log)}" for name in pending)
            raise ServerError(
                "server health checks",
                expected="every service healthy before the timeout",
                found=f"still waiting for {', '.join(pending)}\n{tails}",
                fix="raise --timeout on a busy machine, or read the logs",
            )
        if pending:
            time.sleep(0.5)


def _terminate(record: ServiceRecord, timeout_s: float, say: Callable[[str], None]) -> bool:
    process = _live_process(record)
    if process is None:
        return False
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        members = [process]
    # The group id is the leader's pid (start_new_session).
    _terminate_members(record.name, record.pid, members, timeout_s, say)
    return True


# What each service's leader runs: a process group holding one of these, with its working folder in
# the state folder, is one of ours even when servers.json is lost.
_SERVICE_SIGNATURES = {
    "prefect": ("prefect", "server"),
    "prefect-worker": ("prefect", "worker"),
    "mlflow": ("mlflow", "server"),
    "dask-scheduler": ("dask", "scheduler"),
    "dask-worker": ("dask", "worker"),
}


def _service_name(command: Sequence[str]) -> str | None:
    for name, (module, verb) in _SERVICE_SIGNATURES.items():
        for index in range(len(command) - 2):
            if command[index] == "-m" and command[index + 1] == module and command[index + 2] == verb:
                return name
    return None


def _recorded_leaders(directory: Path, records: Mapping[str, ServiceRecord]) -> dict[int, str]:
    """Leader pids (= process group ids) from the records and from ``pids/*.pid``, which survive a
    corrupt ``servers.json``."""
    leaders = {record.pid: name for name, record in records.items()}
    for pid_file in sorted((directory / "pids").glob("*.pid")):
        text = pid_file.read_text(errors="replace").strip()
        if text.isdigit():
            leaders.setdefault(int(text), pid_file.stem)
    return leaders


def _leftover_groups(
    directory: Path, leaders: Mapping[int, str]
) -> dict[int, tuple[str, list[psutil.Process]]]:
    """Process groups of our services still running in ``directory``: ``{pgid: (name, members)}``.

    Finds what the recorded leaders no longer account for: the children of a leader that died (they
    keep its group, whose id is the leader's pid) and every service when ``servers.json`` is
    unreadable. Only processes whose working folder is ``directory`` are considered.
    """
    folder = str(directory.resolve())
    groups: dict[int, list[psutil.Process]] = {}
    names: dict[int, str] = {}
    for process in psutil.process_iter(["pid", "cwd", "cmdline"]):
        if process.pid == os.getpid() or process.info["cwd"] != folder:
            continue
        try:
            pgid = os.getpgid(process.pid)
        except ProcessLookupError:
            continue
        groups.setdefault(pgid, []).append(process)
        name = _service_name(process.info["cmdline"] or [])
        if name is not None:
            names.setdefault(pgid, name)
    own_group = os.getpgid(0)
    return {
        pgid: (names.get(pgid) or leaders[pgid], members)
        for pgid, members in groups.items()
        # A group is ours when it is a recorded leader's or one of its processes runs a service (a
        # shell sitting in the folder is neither), and never the caller's own group.
        if pgid != own_group and (pgid in names or pgid in leaders)
    }


def _terminate_members(
    label: str, pgid: int, members: list[psutil.Process], timeout_s: float, say: Callable[[str], None]
) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    for member in members:  # members that left the group
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(members, timeout=timeout_s)
    if alive:
        say(f"{label} ignored SIGTERM for {timeout_s:g} s: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        for member in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        _, alive = psutil.wait_procs(alive, timeout=10.0)
    if alive:
        raise ServerError(
            f"{label} server",
            expected="stopped after SIGKILL",
            found=f"pids {[p.pid for p in alive]} still alive",
            fix="check for processes in uninterruptible sleep (ps -o stat)",
        )


def stop_servers(
    directory: str | os.PathLike[str] = DEFAULT_DIRECTORY,
    *,
    timeout_s: float = 15.0,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Stop the services started in ``directory``: every process of every service, last started first.

    Each recorded service is stopped with its whole process group (a server's workers too); then any
    group of ours still running in the folder (children of a leader that died, or every service when
    ``servers.json`` is unreadable) is stopped the same way.

    Parameters
    ----------
    directory
        State folder given to ``start``.
    timeout_s
        Wait after SIGTERM before SIGKILL, per service.
    progress
        Called with one line per event.

    Returns
    -------
    list of str
        Names of the services that were running and are now stopped.
    """
    say = progress or (lambda line: None)
    folder = Path(directory)
    try:
        _, records = _read_state(folder)
    except ServerError as error:
        say(f"{error}: stopping the services found running in {folder.resolve()}")
        records = {}
    stopped = []
    for name in reversed(list(records)):  # the state file keeps the start order
        record = records[name]
        if _terminate(record, timeout_s, say):
            stopped.append(name)
            say(f"stopped {name} (pid {record.pid})")
    if folder.is_dir():
        for pgid, (name, members) in _leftover_groups(folder, _recorded_leaders(folder, records)).items():
            _terminate_members(name, pgid, members, timeout_s, say)
            stopped.append(name)
            say(f"stopped {name} (process group {pgid}, {len(members)} processes left behind)")
    for name in {*records, *SERVICE_NAMES}:
        (folder / "pids" / f"{name}.pid").unlink(missing_ok=True)
    _state_path(folder).unlink(missing_ok=True)
    return stopped


def running_environment(directory: str | os.PathLike[str]) -> dict[str, str]:
    """The :func:`environment` of the servers started in ``directory``, once their Prefect and MLflow
    answer: what ``bandselect run --servers DIR`` exports so the flow reuses them (no temporary Prefect
    server, the MLflow server's database).

    Raises
    ------
    ServerError
        Nothing was started there, or the Prefect or MLflow server does not run or does not answer.
    """
    config, records = _read_state(Path(directory))
    if config is None:
        raise ServerError(
            f"servers of {Path(directory).resolve()}",
            expected="servers started with `bandselect servers start`",
            found="no servers.json",
            fix=f"bandselect servers start --dir {directory}, or drop --servers to run without them",
        )
    checks = _health_checks(config)
    for name in ("prefect", "mlflow"):
        record = records.get(name)
        if record is None or _live_process(record) is None or not checks[name]():
            raise ServerError(
                f"{name} server of {config.directory}",
                expected="running and answering its health check",
                found="not running" if record is None or _live_process(record) is None else "no answer",
                fix=f"bandselect servers status --dir {directory}; restart with stop/start",
            )
    return environment(config)


def status(directory: str | os.PathLike[str] = DEFAULT_DIRECTORY) -> dict[str, dict[str, Any]]:
    """Whether each recorded service runs and answers its health check.

    Parameters
    ----------
    directory
        State folder given to ``start``.

    Returns
    -------
    dict
        ``{name: {"pid", "alive", "healthy", "url", "log"}}``; empty when nothing was started.
    """
    config, records = _read_state(Path(directory))
    if config is None:
        return {}
    checks = _health_checks(config)
    result = {}
    for name, record in records.items():
        alive = _live_process(record) is not None
        result[name] = {
            "pid": record.pid,
            "alive": alive,
            "healthy": alive and checks[name](),
            "url": record.url,
            "log": record.log,
            **{key: value for key, value in record.extra.items() if key != "healthy"},
        }
    return result


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``start|stop|status|env`` arguments to ``parser`` (shared by ``bandselect servers``)."""
    parser.add_argument("action", choices=["start", "stop", "status", "env"])
    parser.add_argument("--dir", default=DEFAULT_DIRECTORY, help="state folder (default %(default)s)")
    parser.add_argument("--host", default=LOCALHOST, help="interface to bind (default %(default)s)")
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--dask-port", type=int, default=8786)
    parser.add_argument("--dask-dashboard-port", type=int, default=8787)
    parser.add_argument("--no-dask-dashboard", action="store_true", help="do not serve the Dask dashboard")
    parser.add_argument("--no-dask", action="store_true", help="start only Prefect and MLflow")
    parser.add_argument("--dask-threads", type=int, default=1, help="threads of each Dask worker")
    parser.add_argument("--dask-workers", type=int, default=1, help="Dask worker processes (default 1)")
    parser.add_argument(
        "--worker-pool", default=None, help="also start a Prefect process worker on this pool"
    )
    parser.add_argument(
        "--prefect-workers", type=int, default=1, help="Prefect workers on --worker-pool (default 1)"
    )
    parser.add_argument(
        "--prefect-worker-limit", type=int, default=None, help="flow runs per Prefect worker at once"
    )
    parser.add_argument("--timeout", type=float, default=None, help="start: health wait; stop: SIGTERM grace")
    parser.add_argument("--json", action="store_true", help="status: print JSON")
    return parser


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed ``start|stop|status|env`` command; exports go to stdout, progress to stderr."""
    if args.action == "start":
        config = ServerConfig(
            directory=Path(args.dir),
            host=args.host,
            prefect_port=args.prefect_port,
            mlflow_port=args.mlflow_port,
            dask_port=args.dask_port,
            dask_dashboard_port=None if args.no_dask_dashboard else args.dask_dashboard_port,
            dask_worker_threads=args.dask_threads,
            worker_pool=args.worker_pool,
            with_dask=not args.no_dask,
            dask_workers=args.dask_workers,
            prefect_workers=args.prefect_workers,
            prefect_worker_limit=args.prefect_worker_limit,
        )
        start_servers(config, timeout_s=args.timeout or 180.0, progress=_stderr)
        _stderr(f"Prefect UI: {config.prefect_ui_url}   MLflow UI: {config.mlflow_url}")
        if config.dask_dashboard_url and config.with_dask:
            _stderr(f"Dask dashboard: {config.dask_dashboard_url}")
        _stderr(f"Export these (or `source {config.directory / ENV_FILE}`):")
        print(_exports(config), end="")
        return 0
    if args.action == "stop":
        stopped = stop_servers(args.dir, timeout_s=args.timeout or 15.0, progress=_stderr)
        _stderr(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        return 0
    if args.action == "env":
        config, _ = _read_state(Path(args.dir))
        if config is None:
            raise ServerError(
                f"servers of {Path(args.dir).resolve()}",
                expected="started",
                found="no servers.json",
                fix="python -m bandselect.servers start",
            )
        print(_exports(config), end="")
        return 0
    report = status(args.dir)
    if args.json:
        print(json.dumps(report, indent=2))
    elif not report:
        print(f"no servers recorded in {Path(args.dir).resolve()}")
    else:
        for name, entry in report.items():
            state = "healthy" if entry["healthy"] else ("running" if entry["alive"] else "dead")
            print(f"{name:15s} {state:8s} pid {entry['pid']:<8d} {entry['url'] or ''}")
    return 0 if report and all(entry["healthy"] for entry in report.values()) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bandselect.servers``."""
    parser = configure_parser(
        argparse.ArgumentParser(prog="python -m bandselect.servers", description=__doc__.split("\n")[0])
    )
    args = parser.parse_args(argv)
    from bandselect.cli_errors import run_reporting_errors

    return run_reporting_errors("servers", lambda: run_command(args), verbose=False)


if __name__ == "__main__":
    sys.exit(main())

"""Static checks of docker/ and deployments/: no Docker engine runs here, so validate what we can."""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DEPLOYMENTS = ROOT / "deployments"
COMPOSE = DOCKER / "compose.yaml"
COMPOSE_CUDA = DOCKER / "compose.cuda.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
PREFECT_YAML = DEPLOYMENTS / "prefect.yaml"
ENTRYPOINT = "bandselect/flows/process_campaign.py:process_campaign"
ENTRY_COMMANDS = {"prefect", "mlflow", "dask", "bandselect"}
POOL = "bandselect-process"


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@cache
def compose_cuda() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_CUDA.read_text())


@cache
def prefect_yaml() -> dict[str, Any]:
    return yaml.safe_load(PREFECT_YAML.read_text())


def _interpolate(text: str) -> str:
    """Compose's ``${VAR:-default}`` with VAR unset: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _shell_commands(script: str) -> list[list[str]]:
    """Simple commands of a `sh -c` script (split on ;, ||, &&, |), redirections dropped."""
    commands = []
    for part in re.split(r"\|\||&&|;|\|", script):
        words = [word for word in shlex.split(part) if not re.match(r"^\d?>", word)]
        if words:
            commands.append(words)
    return commands


def _service_commands() -> dict[str, list[list[str]]]:
    result = {}
    for name, service in compose()["services"].items():
        argv = _argv(service["command"])
        result[name] = _shell_commands(argv[2]) if argv[:2] == ["sh", "-c"] else [argv]
    return result


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        current += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def test_compose_services_have_image_or_build_and_context_exists() -> None:
    services = compose()["services"]
    assert {"prefect-server", "mlflow", "dask-scheduler", "dask-worker", "flow-worker"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = (DOCKER / service["build"]["context"]).resolve()
            assert context == ROOT, name
            assert (context / service["build"]["dockerfile"]).resolve() == DOCKERFILE
            assert service["build"]["args"]["TORCH_VARIANT"].startswith("${TORCH_VARIANT")


def test_dockerfile_base_args_user_and_copy_sources() -> None:
    instructions = _dockerfile_instructions()
    args = {text.split("=", 1)[0]: text.split("=", 1)[1] if "=" in text else None
            for kind, text in instructions if kind == "ARG"}  # fmt: skip
    assert args["TORCH_VARIANT"] == "cpu"
    assert args["PYTHON_VERSION"] == "3.11"
    assert [text for kind, text in instructions if kind == "FROM"] == ["python:${PYTHON_VERSION}-slim"]
    runs = " ".join(text for kind, text in instructions if kind == "RUN")
    assert "download.pytorch.org/whl/cpu" in runs
    assert 'cuda) pip install "torch==${TORCH_VERSION}" ;;' in runs
    users = [text for kind, text in instructions if kind == "USER"]
    assert users and users[-1] not in {"root", "0"}
    copies = [shlex.split(text) for kind, text in instructions if kind == "COPY"]
    assert copies
    for words in copies:
        sources = [word for word in words[:-1] if not word.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source} missing from the build context"
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert "**/.venv" in ignored and "**/.git" in ignored
    copied_roots = {Path(source).parts[0] for words in copies for source in words[:-1]}
    assert not copied_roots & {pattern.strip("*/") for pattern in ignored}


def test_commands_use_installed_entry_points_and_known_options() -> None:
    scripts = {entry.name for entry in entry_points(group="console_scripts")}
    project_scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, commands in _service_commands().items():
        for argv in commands:
            assert argv[0] in ENTRY_COMMANDS, (name, argv)
            assert argv[0] in scripts or argv[0] in project_scripts, (name, argv[0])
    # Options of the click commands are checked against the installed versions.
    from mlflow.cli import cli as mlflow_cli

    dask_commands = {entry.name: entry for entry in entry_points(group="dask_cli")}
    for name, commands in _service_commands().items():
        for argv in commands:
            if argv[:2] == ["mlflow", "server"]:
                command = mlflow_cli.commands["server"]
            elif argv[0] == "dask":
                command = dask_commands[argv[1]].load()
            else:
                continue
            known = {option for param in command.params for option in param.opts + param.secondary_opts}
            used = {word for word in argv[2:] if word.startswith("--")}
            assert used <= known, (name, used - known)


def test_ports_bind_localhost_and_volumes_are_well_formed() -> None:
    spec = compose()
    declared = set(spec.get("volumes") or {})
    for name, service in spec["services"].items():
        for port in service.get("ports", []):
            host, published, target = _interpolate(str(port)).split(":")
            assert host == "127.0.0.1", (name, port)
            assert published.isdigit() and target.isdigit(), (name, port)
        for volume in service.get("volumes", []):
            parts = _interpolate(volume).split(":")
            assert len(parts) in {2, 3}, (name, volume)
            source, target = parts[0], parts[1]
            assert target.startswith("/"), (name, volume)
            if len(parts) == 3:
                assert parts[2] in {"ro", "rw"}, (name, volume)
            if not source.startswith(("/", ".")):
                assert source in declared, (name, source)
        for dependency in service.get("depends_on", {}):
            assert dependency in spec["services"], (name, dependency)
    for name in ("prefect-server", "mlflow", "dask-scheduler"):
        assert spec["services"][name]["healthcheck"]["test"][0] == "CMD"
    archives = [v for v in spec["services"]["flow-worker"]["volumes"] if "/data/archives" in v]
    assert archives and all(v.endswith(":ro") for v in archives)


def test_flow_worker_serves_the_deployment_pool() -> None:
    argv = _argv(compose()["services"]["flow-worker"]["command"])
    assert argv[:3] == ["prefect", "worker", "start"]
    assert argv[argv.index("--pool") + 1] == POOL
    assert argv[argv.index("--type") + 1] == "process"
    assert "--name" not in argv  # scalable: `--scale flow-worker=2` gives two workers, not one name twice
    deploy_script = _argv(compose()["services"]["deploy"]["command"])[2]
    assert "deployments/prefect.yaml" in deploy_script


def test_prefect_yaml_validates_and_points_at_the_flow() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.client.schemas.schedules import CronSchedule

    model = PrefectYamlModel.model_validate(prefect_yaml())
    (deployment,) = model.deployments
    assert deployment.entrypoint == ENTRYPOINT
    assert deployment.work_pool is not None
    assert deployment.work_pool.name == POOL
    assert deployment.schedules and deployment.schedules[0].cron
    CronSchedule(cron=deployment.schedules[0].cron, timezone=deployment.schedules[0].timezone)
    assert set(deployment.parameters) == {"config"}
    assert {"campaign", "archive", "store", "output"} <= set(deployment.parameters["config"])
    path, function = ENTRYPOINT.split(":")
    if (ROOT / path).exists():  # written by the flows engineer
        tree = ast.parse((ROOT / path).read_text())
        assert function in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_serve_script_matches_prefect_yaml(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bandselect_serve_script", DEPLOYMENTS / "serve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parameters = module.parameters_for("camp", tmp_path / "archive", tmp_path / "work")
    assert set(parameters["config"]) == set(prefect_yaml()["deployments"][0]["parameters"]["config"])
    assert parameters["config"]["store"] == str((tmp_path / "work" / "store.zarr").resolve())
    source = (DEPLOYMENTS / "serve.py").read_text()
    module_path, function = ENTRYPOINT.split(":")
    assert f"from {module_path.removesuffix('.py').replace('/', '.')} import {function}" in source
    assert ".to_deployment(" in source and "serve(deployment)" in source
    with pytest.raises(SystemExit):
        module.main(["--campaign", "c", "--archive", str(tmp_path / "missing"), "--workdir", str(tmp_path)])


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {key: _interpolate(str(value)) for key, value in (service.get("environment") or {}).items()}


def test_one_image_built_once_and_used_by_every_service() -> None:
    services = compose()["services"]
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["prefect-server"]
    images = {service["image"] for service in services.values()}
    assert images == {"bandselect:${TORCH_VARIANT:-cpu}"}
    for name, service in services.items():
        # Nothing is pulled: the one local build is the image of every service.
        assert service["pull_policy"] == "never", name
        if name != "prefect-server":
            # Each service waits for the builder (started, or healthy) directly or through one that does.
            assert service.get("depends_on"), name


def test_prefect_ui_url_opens_from_the_host() -> None:
    services = compose()["services"]
    (published,) = [_interpolate(p).split(":") for p in services["prefect-server"]["ports"]]
    host, host_port, _ = published
    ui_url = f"http://{host}:{host_port}"
    for name in ("flow-worker", "deploy", "dask-worker"):
        env = _environment(services[name])
        assert env["PREFECT_UI_URL"] == ui_url, name  # links recorded in MLflow: the host's URL
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api", name  # the API: inside
    server_env = _environment(services["prefect-server"])
    assert server_env["PREFECT_UI_URL"] == ui_url and server_env["PREFECT_UI_API_URL"] == f"{ui_url}/api"
    assert "PREFECT_UI_URL" in (ROOT / "docker" / "README.md").read_text()


def test_dask_worker_count_is_a_variable() -> None:
    argv = _argv(compose()["services"]["dask-worker"]["command"])
    assert argv[argv.index("--nworkers") + 1] == "${DASK_WORKERS:-2}"
    assert argv[argv.index("--nthreads") + 1] == "${DASK_WORKER_THREADS:-1}"
    assert _interpolate(argv[argv.index("--nworkers") + 1]).isdigit()


def test_dask_services_preload_the_statistics_modules() -> None:
    """The scheduler and the workers import what a statistics graph names at their start (the module
    exists and imports), as server mode starts them."""
    import importlib

    from bandselect.servers import DASK_PRELOAD

    for name in ("dask-scheduler", "dask-worker"):
        argv = _argv(compose()["services"][name]["command"])
        module = argv[argv.index("--preload") + 1]
        assert (argv[argv.index("--preload")], module) == DASK_PRELOAD, name
        importlib.import_module(module)


def test_cuda_override_reserves_gpus_for_the_cuda_build() -> None:
    base, override = compose()["services"], compose_cuda()["services"]
    assert set(override) <= set(base)
    assert {service["image"] for service in override.values()} == {"bandselect:cuda"}
    assert set(override) == set(base)  # every service takes the CUDA image: still one image
    builders = [name for name, service in override.items() if "build" in service]
    assert (
        builders == ["prefect-server"]
        and override["prefect-server"]["build"]["args"]["TORCH_VARIANT"] == "cuda"
    )
    assert "cuda)" in (DOCKER / "Dockerfile").read_text()  # the build argument the Dockerfile knows
    gpu_services = {name for name, service in override.items() if "deploy" in service}
    assert gpu_services == {"dask-worker", "flow-worker"}
    for name in gpu_services:
        (device,) = override[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"] and device["count"] == "all"
        assert override[name]["environment"]["BANDSELECT_STATISTICS_DEVICE"] == "auto"
    from bandselect.flows.config import StatisticsSettings

    StatisticsSettings(device="auto")  # the value the override sets is one the flows accept


def test_storage_credentials_file_is_optional() -> None:
    services = compose()["services"]
    for name in ("dask-worker", "flow-worker", "deploy"):
        (entry,) = services[name]["env_file"]
        assert entry == {"path": "./bandselect.env", "required": False}, name
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert "docker" in ignored  # the credentials file next to compose.yaml never enters the image

"""Packaging as a library: declared dependencies match the imports, layers, and the pinned tested set.

- Every third-party module imported under ``bandselect/`` is declared, in the core dependencies when the
  library below ``tasks/`` imports it and in the ``flows`` extra when only the orchestration layer does;
  nothing is declared that is not imported (two documented runtime-only entries and dev tools excepted).
- The library below ``tasks/`` imports with Prefect and MLflow unimportable: a notebook user installs the
  core only.
- ``constraints.txt`` pins every declared distribution at a version inside its declared range, and the
  Makefile installs through it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bandselect"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: The orchestration layer: may import the ``flows`` extra. Everything else in bandselect/ is the library.
ORCHESTRATION_PATHS = ("tasks", "flows", "tracking", "cli.py", "servers.py")
#: Declared although never imported, each for a stated reason.
RUNTIME_ONLY = {
    "sqlalchemy": "flows",  # capped below 2.1: MLflow 3 warns with it
    "bokeh": "flows",  # the Dask dashboard of server mode needs it
    "s3fs": "s3",  # fsspec loads it for s3:// URLs
}
#: Dev tools used as commands or pytest plugins, not imported (moto: its moto_server is the tests' S3).
DEV_TOOLS = {"ruff", "pytest-timeout", "pytest-xdist", "moto"}


def _third_party_imports(paths: Iterable[Path], local: frozenset[str] = frozenset()) -> set[str]:
    """Top-level names of the non-stdlib modules imported (at any depth) by ``paths``, less ``local``."""
    local = local | {"bandselect"}
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
                modules = [node.module]
            else:
                continue
            names.update(module.split(".")[0] for module in modules)
    return {name for name in names - local if name not in sys.stdlib_module_names and name != "__future__"}


def _distributions(modules: set[str]) -> set[str]:
    """The installed distributions (canonical names) that provide ``modules``."""
    providers = importlib.metadata.packages_distributions()
    unknown = sorted(module for module in modules if module not in providers)
    assert not unknown, f"imported but provided by no installed distribution: {unknown}"
    # mlflow's modules come from mlflow, mlflow-skinny and mlflow-tracing: the import is declared as one.
    return {canonicalize_name(min(providers[module], key=len)) for module in modules}


def _declared(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(text).name) for text in requirements}


def _is_orchestration(path: Path) -> bool:
    return path.relative_to(PACKAGE).parts[0] in ORCHESTRATION_PATHS


def _library_files() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py") if not _is_orchestration(path)]


def _orchestration_files() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py") if _is_orchestration(path)]


CORE = _declared(PYPROJECT["project"]["dependencies"])
EXTRAS = {name: _declared(reqs) for name, reqs in PYPROJECT["project"]["optional-dependencies"].items()}


def test_core_dependencies_are_exactly_what_the_library_imports() -> None:
    imported = _distributions(_third_party_imports(_library_files()))
    assert imported - CORE == set(), "imported below tasks/ but not a core dependency"
    assert CORE - imported == set(), "core dependency that the library below tasks/ never imports"


def test_flows_extra_is_exactly_what_only_the_orchestration_layer_imports() -> None:
    imported = _distributions(_third_party_imports(_orchestration_files())) - CORE
    runtime_only = {name for name, extra in RUNTIME_ONLY.items() if extra == "flows"}
    assert imported - EXTRAS["flows"] == set(), "imported by tasks/, flows/, tracking, cli or servers"
    assert EXTRAS["flows"] - imported - runtime_only == set(), "declared in flows but never imported"
    assert EXTRAS["flows"] & CORE == set()
    # The runtime-only entries stay declared and are really not imported (or they are ordinary entries).
    all_imports = _distributions(_third_party_imports(list(PACKAGE.rglob("*.py"))))
    assert runtime_only <= EXTRAS["flows"] and not runtime_only & all_imports


def test_all_extra_is_every_runtime_extra() -> None:
    runtime_extras = sorted(set(EXTRAS) - {"all", "dev"})
    assert runtime_extras == ["flows", "s3"]
    # The s3 extra is the filesystem fsspec loads for s3:// URLs: declared, never imported.
    all_imports = _distributions(_third_party_imports(list(PACKAGE.rglob("*.py"))))
    assert EXTRAS["s3"] == {name for name, extra in RUNTIME_ONLY.items() if extra == "s3"}
    assert not EXTRAS["s3"] & all_imports
    (requirement,) = (Requirement(text) for text in PYPROJECT["project"]["optional-dependencies"]["all"])
    assert requirement.name == PYPROJECT["project"]["name"]
    assert sorted(requirement.extras) == runtime_extras


def test_dev_extra_covers_the_test_and_benchmark_imports() -> None:
    files = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    # Test helpers (tests/stats/stats_data.py, ...) are imported by their bare module name.
    imported = _distributions(_third_party_imports(files, local=frozenset(path.stem for path in files)))
    assert imported - CORE - EXTRAS["flows"] - EXTRAS["dev"] == set(), "imported by tests or benchmarks"
    assert EXTRAS["dev"] - imported - DEV_TOOLS == set(), "declared in dev but never imported"
    assert {"rich", "prefect-dask", "numcodecs"} & (CORE | EXTRAS["flows"] | EXTRAS["dev"]) == set()


def test_no_exact_pins_in_pyproject() -> None:
    # A library pins nothing exactly: the tested set lives in constraints.txt.
    everything = [*PYPROJECT["project"]["dependencies"]]
    for requirements in PYPROJECT["project"]["optional-dependencies"].values():
        everything += requirements
    pinned = [
        text for text in everything if any(s.operator in {"==", "==="} for s in Requirement(text).specifier)
    ]
    assert pinned == []


def test_library_imports_without_prefect_and_mlflow() -> None:
    modules = sorted(
        ".".join(("bandselect", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        for path in _library_files()
    )
    for package in ("selectors", "stats", "store", "training", "pipeline", "nodes", "evaluation"):
        assert f"bandselect.{package}" in modules, package
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in ("prefect", "mlflow"):
            sys.modules[name] = None  # any import of them now raises ImportError
        failed = {{}}
        for module in {modules!r}:
            try:
                importlib.import_module(module)
            except ImportError as error:
                failed[module] = str(error)
        print(failed)
        raise SystemExit(1 if failed else 0)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def _constraints() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==" and not requirement.extras and requirement.marker is None, line
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{name} pinned twice"
        pins[name] = Version(specifier.version)
    return pins


def test_constraints_pin_every_declared_distribution_within_its_range() -> None:
    pins = _constraints()
    own = canonicalize_name(PYPROJECT["project"]["name"])
    assert own not in pins
    requirements = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    for texts in PYPROJECT["project"]["optional-dependencies"].values():
        requirements += [Requirement(text) for text in texts]
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name == own:
            continue
        assert name in pins, f"{name} is declared but constraints.txt does not pin it"
        assert requirement.specifier.contains(pins[name], prereleases=True), (str(requirement), pins[name])
    # torch without a local label: "==2.13.0" takes the local CPU wheel 2.13.0+cpu (see the Makefile).
    assert pins["torch"].local is None


def test_the_venv_runs_the_pinned_versions() -> None:
    # The suite tests the pinned set: a declared distribution at another version means a stale venv.
    pins = _constraints()
    declared = CORE | EXTRAS["flows"] | EXTRAS["s3"] | EXTRAS["dev"]
    installed = {name: Version(importlib.metadata.version(name)) for name in declared}
    drift = {name: (str(version), str(pins[name])) for name, version in installed.items()
             if Version(version.public) != pins[name]}  # fmt: skip
    assert drift == {}, "rerun `make venv` (or `make constraints` after an intended upgrade)"


def test_makefile_installs_through_the_constraints_and_ci_runs_the_checks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    install_lines = [
        line
        for line in makefile.splitlines()
        if not line.strip().startswith("#") and ("pip install" in line or "PIP_INSTALL)" in line)
    ]
    assert install_lines
    for line in install_lines:
        assert "-c $(CONSTRAINTS)" in line or "$(PIP_INSTALL)" in line, line
    assert re.search(r"^PIP_INSTALL := .*pip install .*-c \$\(CONSTRAINTS\)", makefile, re.MULTILINE)
    assert re.search(r"^\$\(STAMP\): pyproject\.toml \$\(CONSTRAINTS\)$", makefile, re.MULTILINE)
    assert "-e '.[all,dev]'" in makefile
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    expected = {"venv", "demo", "test", "test-fast", "lint", "format-check", "format", "bench", "clean"}
    assert expected <= targets
    assert re.search(r'^test-fast: .*\n\t.* pytest .*-m "not slow and not servers"$', makefile, re.MULTILINE)
    ci_commands = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make")
    ]
    assert ci_commands == ["make lint", "make format-check", "make test"]
    development = (ROOT / "README.md").read_text().split("## Development", 1)[1]
    for target in targets:
        assert f"make {target}`" in development, f"README's Development section does not name make {target}"

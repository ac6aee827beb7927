"""Hostile command lines: one message and the right exit code (2 input, 1 environment), never a traceback
unless ``--verbose``, nothing written.

In process through ``bandselect.cli.main`` where the command fails before any flow starts; as a
subprocess where the behaviour is the process's own (the exit code of the entry point, a closed pipe,
an unreachable Dask scheduler inside a flow run).
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bandselect import cli
from bandselect.cli_errors import EXIT_ENVIRONMENT, EXIT_INPUT_ERROR, run_reporting_errors
from bandselect.errors import ConfigError, ResourceError
from bandselect.servers import free_port
from bandselect.synthetic import write_campaign

BANDSELECT = str(Path(sys.executable).with_name("bandselect"))


def _tree_digest(root: Path) -> str:
    """A digest of every file's path and content under ``root`` (what "unchanged" means)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "campaign.zarr"
    write_campaign(path, n_acquisitions=2, height=16, width=16, n_bands=12, seed=0)
    return path


def _config(tmp_path: Path, store: Path, extra: str = "") -> Path:
    path = tmp_path / "run.yaml"
    text = f"campaign: hostile\nstore: {store}\noutput: {tmp_path / 'out.zarr'}\n{extra}"
    path.write_text(text, encoding="utf-8")
    return path


_TOO_MANY_BANDS = """pipeline:
  nodes:
    selector: {type: SupervisedFullSpectrumBandSelector, config: {num_spectral_bands: auto, k: 40}}
  connections:
    - [data.cube, selector.cube]
    - [data.wavelengths, selector.wavelengths]
    - [data.mask, selector.mask]
"""

# name -> (argv builder, expected exit code, fragments of the one-line message)
Case = tuple[Callable[[Path, Path], list[str]], int, tuple[str, ...]]
CASES: dict[str, Case] = {
    "run-unknown-field": (
        lambda t, s: ["run", str(_config(t, s, "epochz: 3\n"))],
        EXIT_INPUT_ERROR,
        ("epochz", "expected", "Fix:"),
    ),
    "run-missing-config": (lambda t, s: ["run", str(t / "none.yaml")], EXIT_INPUT_ERROR, ("none.yaml",)),
    # The flow's plan runs before Prefect's temporary server starts: nothing (no .prefect) is created.
    "run-missing-store": (
        lambda t, s: ["run", str(_config(t, t / "absent.zarr"))],
        EXIT_INPUT_ERROR,
        ("absent.zarr", "no such store", "archive"),
    ),
    "run-pipeline-that-does-not-fit-the-bands": (
        lambda t, s: ["run", str(_config(t, s, _TOO_MANY_BANDS))],
        EXIT_INPUT_ERROR,
        ("40", "12"),
    ),
    "run-config-is-a-folder": (lambda t, s: ["run", str(t)], EXIT_INPUT_ERROR, ("expected",)),
    "run-yaml-syntax": (
        lambda t, s: ["run", str(_config(t, s, "training: [1, 2\n"))],
        EXIT_INPUT_ERROR,
        ("line", "column"),
    ),
    "run-not-a-mapping": (
        lambda t, s: ["run", str(_write(t / "list.yaml", "- 1\n- 2\n"))],
        EXIT_INPUT_ERROR,
        ("mapping",),
    ),
    "run-bins-unbounded": (
        lambda t, s: ["run", str(_config(t, s, "statistics: {n_bins: 1000000000000}\n"))],
        EXIT_INPUT_ERROR,
        ("n_bins", "65536"),
    ),
    "run-negative-epochs": (
        lambda t, s: ["run", str(_config(t, s, "training: {epochs: -1}\n"))],
        EXIT_INPUT_ERROR,
        ("epochs",),
    ),
    "demo-dir-is-a-file": (
        lambda t, s: ["demo", "--dir", str(_write(t / "file.txt", "x"))],
        EXIT_INPUT_ERROR,
        ("file.txt", "Fix:"),
    ),
    "info-not-a-store": (lambda t, s: ["info", str(t)], EXIT_INPUT_ERROR, ("expected",)),
    "info-missing-path": (lambda t, s: ["info", str(t / "nowhere.zarr")], EXIT_INPUT_ERROR, ("nowhere",)),
    "ingest-missing-file": (
        lambda t, s: ["ingest", str(t / "absent.npz"), "--store", str(t / "new.zarr")],
        EXIT_INPUT_ERROR,
        ("absent.npz",),
    ),
    "ingest-into-a-file": (
        lambda t, s: ["ingest", str(_npz(t)), "--store", str(_write(t / "plain.txt", "x"))],
        EXIT_INPUT_ERROR,
        ("plain.txt",),
    ),
    "ingest-bad-wavelength-list": (
        lambda t, s: ["ingest", str(_npz(t)), "--store", str(t / "w.zarr"), "--wavelengths", "400,abc,500"],
        EXIT_INPUT_ERROR,
        ("wavelengths",),
    ),
    "report-missing-sqlite": (
        lambda t, s: ["report", "0123456789abcdef", "--tracking-uri", f"sqlite:///{t / 'absent.db'}"],
        EXIT_INPUT_ERROR,
        ("absent.db",),
    ),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _npz(tmp_path: Path) -> Path:
    path = tmp_path / "cube.npz"
    rng = np.random.default_rng(0)
    np.savez(path, cube=rng.random((8, 8, 5), dtype=np.float32), wavelengths_nm=np.linspace(450, 850, 5))
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_command_lines_say_one_thing_and_write_nothing(
    name: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, code, fragments = CASES[name]
    argv = build(tmp_path, store)
    before_store, before_tmp = _tree_digest(store), sorted(p.name for p in tmp_path.iterdir())
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"bandselect {argv[0]}: error: ")
    assert "Traceback" not in captured.err + captured.out
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert _tree_digest(store) == before_store
    created = sorted(p.name for p in tmp_path.iterdir())
    assert created == before_tmp, f"written by a failing command: {set(created) - set(before_tmp)}"


def test_verbose_shows_the_traceback_of_the_same_error(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, store, "epochz: 3\n")
    assert cli.main(["run", str(config), "--verbose"]) == EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ConfigError" in err
    assert err.rstrip().splitlines()[-1].startswith("bandselect run: error: ")


@pytest.mark.parametrize(
    ("raised", "code", "fragment"),
    [
        (ConfigError("x", expected="a", found="b", fix="c"), EXIT_INPUT_ERROR, "x: expected a, found b"),
        (ResourceError("disk", expected="room", found="none", fix="free"), EXIT_ENVIRONMENT, "disk"),
        (OSError(errno.ENOSPC, "No space left on device", "/data/store.zarr"), EXIT_ENVIRONMENT, "[ENOSPC]"),
        (OSError(errno.EACCES, "Permission denied", "/data"), EXIT_ENVIRONMENT, "[EACCES]"),
        (MemoryError(), EXIT_ENVIRONMENT, "out of memory"),
        (RuntimeError("boom"), EXIT_ENVIRONMENT, "unexpected RuntimeError: boom"),
    ],
    ids=["input", "resource", "disk-full", "permission", "memory", "unexpected"],
)
def test_every_failure_becomes_one_line(
    raised: BaseException, code: int, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def body() -> int:
        raise raised

    assert run_reporting_errors("ingest", body, verbose=False) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err


def test_a_closed_pipe_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    read, write = os.pipe()
    os.close(read)
    stream = io.TextIOWrapper(os.fdopen(write, "wb", buffering=0), write_through=True)
    monkeypatch.setattr(sys, "stdout", stream)

    def body() -> int:
        print("a line for a reader that went away")
        return 0

    assert run_reporting_errors("info", body, verbose=False) == EXIT_ENVIRONMENT
    assert "Traceback" not in capsys.readouterr().err


def test_info_into_head_has_no_traceback(store: Path) -> None:
    shell = f"'{BANDSELECT}' info '{store}' | head -c 20"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


@pytest.mark.slow
def test_an_unreachable_scheduler_is_exit_1_within_seconds(store: Path, tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, store, f"statistics: {{scheduler_address: 'tcp://127.0.0.1:{port}'}}\n")
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    started = time.perf_counter()
    done = subprocess.run(
        [BANDSELECT, "run", str(config)], capture_output=True, text=True, timeout=300, check=False, env=env
    )
    after_server = time.perf_counter() - started
    assert done.returncode == EXIT_ENVIRONMENT, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr[-2000:]  # Prefect's own lines are INFO: its server start and stop
    assert errors[0].startswith("bandselect run: error: Dask scheduler") and "servers start" in errors[0]
    # The scheduler check waits 5 s; the rest is Prefect's temporary server starting on a busy machine.
    assert after_server < 240
    assert not (tmp_path / "out.zarr").exists()

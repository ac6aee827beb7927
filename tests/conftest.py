"""Shared fixtures: the real cubes in ``../shared/data`` (skipped with a reason where absent)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from shared_cubes import SHARED_DATA_DIR, load_shared_cube

from bandselect._prefect_env import set_local_defaults

set_local_defaults()  # the test process and the CLI subprocesses it starts

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs three worker processes on two cores: torch's default of one intra-op thread per
    # core (OpenMP threads that spin between parallel regions) oversubscribes them; the real-data
    # trainings ran 5x slower than alone (samson water: 330 s). One thread per worker, as the benchmarks
    # train (bench_learnable.py); the statistics kernels' own split follows the BLAS limit, untouched.
    import torch

    torch.set_num_threads(1)

SHARED_CUBES = ("pavia_rosis_abu_beach4", "samson", "jasper_ridge", "muufl_gulfport_tgt")


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real ephemeral Prefect API with a temporary database, once per pytest session (~10 s).

    A flow run without it starts Prefect's temporary API server of its own (faster to start, for a
    module of a few flow runs: ``tests/tasks/test_task_retries.py``), stopped at the end of the
    session by :func:`_stop_temporary_prefect_servers`.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session", autouse=True)
def _stop_temporary_prefect_servers() -> Iterator[None]:
    """Prefect's temporary API servers (started by flow runs outside ``prefect_harness``) stopped by
    Prefect's own ``stop`` (which ends the server process) when the session ends, while pytest still
    captures output: left to Prefect's exit hook, its "Stopping temporary server" log line went to a
    closed stream, a traceback at the end of ``make test``. Torn down last (autouse, set up first)."""
    yield
    server_module = sys.modules.get("prefect.server.api.server")  # loaded only if a server was started
    if server_module is not None:
        for server in list(server_module.SubprocessASGIServer._instances.values()):
            server.stop()


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real cubes; skips the test when it is absent (e.g. a clone without ``../shared``)."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(
            f"real-data folder {SHARED_DATA_DIR} is absent (set BANDSELECT_SHARED_DATA or add ../shared)"
        )
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def load_shared(shared_data_dir: Path) -> Callable[[str], dict[str, np.ndarray]]:
    """``load_shared(name)`` -> the arrays of ``<name>/<name>.npz`` (``cube``, ``wavelengths_nm``, ...)."""

    return load_shared_cube

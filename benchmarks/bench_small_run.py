"""Small runs: ``bandselect run`` on a 100 × 100 × 189 scene, from the command line as a user runs it.

Each run is a fresh ``bandselect run CONFIG`` process (imports included), timed from its start to its
exit, on one labelled scene ingested from an archive (one ``.npz``) with the default pipeline:

1. ``embedded``: no servers configured, so Prefect's temporary server starts inside the run and MLflow
   writes a fresh SQLite database (what a first-time user sees).
2. Server mode (``bandselect servers start``, timed apart): the same run with ``--servers DIR``.
   ``first``: the first run against a fresh MLflow server; ``warm``: each later run with a new store,
   new products and a new work folder (ingest, statistics, selection, export, plots, MLflow: nothing
   reused but the servers); ``rerun``: the same config again, whose published products are skipped.

Goal (issue 15, item 7): a warm run of a small scene ≤ 15 s. The seconds move with this shared machine's
speed (the same code measured 14.6 s and 18.6 s an hour apart), so the run also times ``imports``: a
fresh process importing the flow's modules (torch, Prefect, MLflow, xarray, zarr), the floor of any run.

    python benchmarks/bench_small_run.py         # writes benchmarks/results/small_run.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from bench_common import machine_info, write_results

RESULTS = Path(__file__).resolve().parent / "results" / "small_run.json"
BANDSELECT = Path(sys.executable).with_name("bandselect")
#: Server settings a run must not inherit from the shell that started the benchmark.
SERVER_VARIABLES = (
    "PREFECT_API_URL",
    "MLFLOW_TRACKING_URI",
    "BANDSELECT_DASK_ADDRESS",
    "BANDSELECT_SERVERS_DIR",
)


def write_archive(folder: Path, height: int, width: int, n_bands: int) -> None:
    """One labelled scene as the archive's only ``.npz``."""
    from bandselect.synthetic import make_scene

    folder.mkdir(parents=True)
    scene = make_scene(height, width, n_bands=n_bands, seed=0, anomaly_fraction=0.02)
    np.savez(
        folder / "scene.npz",
        cube=scene.cube,
        wavelengths_nm=scene.wavelengths_nm,
        mask=scene.mask.astype(np.uint8),
    )


def write_config(folder: Path, archive: Path, name: str) -> Path:
    """A select-bands config whose store, products and work folder are its own (``folder/name``)."""
    run = folder / name
    run.mkdir(parents=True)
    config = run / "config.yaml"
    config.write_text(
        f"campaign: bench-{name}\n"
        f"archive: {archive}\n"
        f"store: {run / 'campaign.zarr'}\n"
        f"output: {run / 'composites.zarr'}\n"
        "tracking: {experiment: bench-small-run}\n"
    )
    return config


def timed_run(config: Path, environment: dict[str, str], servers: Path | None = None) -> float:
    """Seconds of one ``bandselect run`` process; its output is kept only when it fails."""
    command = [str(BANDSELECT), "run", str(config)]
    if servers is not None:
        command += ["--servers", str(servers)]
    start = time.perf_counter()
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
    return round(seconds, 2)


def timed_imports(environment: dict[str, str]) -> float:
    """Seconds of a fresh process that imports what ``bandselect run`` imports, and exits as it does
    (heap frozen, :func:`bandselect.cli.console_main`)."""
    code = "import gc, bandselect.flows.plan, bandselect.flows.select_bands; gc.freeze()"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=environment, check=True)
    return round(time.perf_counter() - start, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=100)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--bands", type=int, default=189)
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from bandselect.servers import ServerConfig, free_ports, start_servers, stop_servers

    root = Path(tempfile.mkdtemp(prefix="bench-small-run-"))
    environment = {key: value for key, value in os.environ.items() if key not in SERVER_VARIABLES}
    environment |= {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    servers = root / "servers"
    try:
        archive = root / "archive"
        write_archive(archive, args.height, args.width, args.bands)
        embedded = timed_run(write_config(root, archive, "embedded"), environment)

        prefect, mlflow, dask, dashboard = free_ports(4)
        config = ServerConfig(
            servers, prefect_port=prefect, mlflow_port=mlflow, dask_port=dask, dask_dashboard_port=dashboard
        )
        start = time.perf_counter()
        start_servers(config)
        servers_start = round(time.perf_counter() - start, 2)
        first = timed_run(write_config(root, archive, "first"), environment, servers)
        warm = [
            timed_run(write_config(root, archive, f"warm{i}"), environment, servers)
            for i in range(args.warm_runs)
        ]
        rerun = timed_run(root / "first" / "config.yaml", environment, servers)
        imports = sorted(timed_imports(environment) for _ in range(3))[1]
    finally:
        stop_servers(servers)
        shutil.rmtree(root, ignore_errors=True)

    median = float(np.median(warm))
    result = {
        "benchmark": "small_run",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "scene": [args.height, args.width, args.bands],
        "seconds": {
            "embedded": embedded,
            "servers_start": servers_start,
            "first_with_servers": first,
            "warm_median": median,
            "rerun_published": rerun,
            "imports": imports,
        },
        "warm_all": warm,
        "goal": "warm <= 15 s",
        "met": median <= 15.0,
    }
    write_results(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

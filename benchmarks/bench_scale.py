"""Scale benchmarks (issue 15), results in ``benchmarks/results/scale.json``.

1. Cost against store size: one synthetic campaign of 1 GiB scenes (``bandselect.synthetic``: 2048 × 2048 ×
   61 float32, chunks 256 × 256), the one-read statistics job over its first 1, 2, 4 and 8 GiB
   (``first_n``), each in a fresh process under ``/usr/bin/time -v``: wall time, peak RSS, GB/s, and a
   least-squares line of wall time against size (goal: linear, flat RSS), and the same process's bare
   ``dask.array`` read-and-sum of the same acquisitions (the job as a fraction of it, robust to load).
2. Distributed against local on the same store (its first 2 GiB): a ``dask.distributed.LocalCluster`` of two
   worker processes with one thread each against the threaded scheduler with two threads; the same
   statistics either way.
3. GPU: the job with ``device="cuda"`` against NumPy when CUDA is available; recorded as not run otherwise.

    python benchmarks/bench_scale.py                  # up to 8 GiB (needs ~8 GB of disk; removed after)
    python benchmarks/bench_scale.py --max-gib 2      # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from bandselect.names import VAR_CUBE
from bandselect.stats import compute_statistics
from bandselect.store import open_campaign
from bandselect.synthetic import write_campaign

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
N_BANDS = 61
SIDE = 2048  # one scene: 2048 × 2048 × 61 float32 = 1 GiB
SIZES_GIB = (1, 2, 4, 8)

_CHILD = """
import json, sys, time
import dask
from bandselect.names import VAR_CUBE
from bandselect.stats import compute_statistics
from bandselect.store import open_campaign
campaign, n = open_campaign(sys.argv[1]), int(sys.argv[2])
for i in campaign.ids()[:n]:  # first opens (imports, metadata) before either timing, as for both after
    campaign.open(i)
start = time.perf_counter()  # from opening the acquisitions, as compute_statistics opens them itself
sums = [campaign.open(i)[VAR_CUBE].data.sum(dtype="float64") for i in campaign.ids()[:n]]
dask.compute(*sums, scheduler="threads")
bare_s = time.perf_counter() - start
start = time.perf_counter()
stats = compute_statistics(campaign, first_n=n)
print(json.dumps({"wall_s": time.perf_counter() - start, "bare_s": bare_s, "count": stats.count}))
"""


def _bytes(campaign, n: int) -> int:  # type: ignore[no-untyped-def]
    return sum(campaign.open(i)[VAR_CUBE].nbytes for i in campaign.ids()[:n])


def cost_against_size(store: Path, sizes: list[int]) -> dict[str, object]:
    """The statistics job over the first ``n`` GiB of the store, one fresh process per size."""
    campaign = open_campaign(store)
    timer = Path("/usr/bin/time")
    runs = []
    for n in sizes:
        command = [sys.executable, "-c", _CHILD, str(store), str(n)]
        if timer.exists():
            command = [str(timer), "-v", *command]
        load = os.getloadavg()[0]
        run = subprocess.run(command, capture_output=True, text=True, check=True)
        child = json.loads(run.stdout.strip().splitlines()[-1])
        peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
        nbytes = _bytes(campaign, n)
        runs.append(
            {
                "store_bytes": nbytes,
                "acquisitions": n,
                "wall_s": child["wall_s"],
                "gb_per_s": nbytes / child["wall_s"] / 1e9,
                # the same process's bare read-and-sum of the same acquisitions just before: the ratio
                # holds whatever else the machine runs
                "bare_read_sum_s": child["bare_s"],
                "fraction_of_bare": child["bare_s"] / child["wall_s"],
                "pixels": child["count"],
                "peak_rss_bytes": None if peak is None else int(peak.group(1)) * 1024,
                "load_average_1min_before": load,
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    sizes_gb = np.array([r["store_bytes"] for r in runs], dtype=np.float64) / 1e9
    walls = np.array([r["wall_s"] for r in runs], dtype=np.float64)
    fit: dict[str, float] = {}
    if len(runs) >= 2:
        slope, intercept = np.polyfit(sizes_gb, walls, 1)
        predicted = slope * sizes_gb + intercept
        total = float(np.sum((walls - walls.mean()) ** 2))
        fit = {
            "seconds_per_gb": float(slope),
            "intercept_s": float(intercept),
            "r_squared": 1.0 - float(np.sum((walls - predicted) ** 2)) / total if total > 0 else 1.0,
        }
    rss = [r["peak_rss_bytes"] for r in runs if r["peak_rss_bytes"] is not None]
    return {
        "runs": runs,
        "linear_fit": fit,
        "peak_rss_min_bytes": min(rss) if rss else None,
        "peak_rss_max_bytes": max(rss) if rss else None,
        "measured_with": "/usr/bin/time -v" if timer.exists() else "none",
        "goal_peak_rss_bytes": 2 * 10**9,
    }


def distributed_against_local(store: Path, n: int, rounds: int = 2) -> dict[str, object]:
    """The same job on a LocalCluster of two worker processes and on the threaded scheduler."""
    from distributed import LocalCluster

    campaign = open_campaign(store)
    nbytes = _bytes(campaign, n)
    compute_statistics(campaign, first_n=1)  # warm imports and page cache alike
    local_runs: list[float] = []
    distributed_runs: list[float] = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        compute_statistics(campaign, first_n=1, scheduler_address=cluster.scheduler_address)
        # alternated rounds, best of each: the machine is shared, a load spike hits one round, not one side
        for _ in range(rounds):
            start = time.perf_counter()
            local = compute_statistics(campaign, first_n=n)
            local_runs.append(time.perf_counter() - start)
            start = time.perf_counter()
            remote = compute_statistics(campaign, first_n=n, scheduler_address=cluster.scheduler_address)
            distributed_runs.append(time.perf_counter() - start)
    local_s, distributed_s = min(local_runs), min(distributed_runs)
    return {
        "store_bytes": nbytes,
        "local_threads": os.cpu_count(),
        "local_s": local_s,
        "local_gb_per_s": nbytes / local_s / 1e9,
        "distributed_workers": 2,
        "distributed_threads_per_worker": 1,
        "distributed_s": distributed_s,
        "distributed_gb_per_s": nbytes / distributed_s / 1e9,
        "distributed_relative_to_local": local_s / distributed_s,
        "same_histograms": bool(np.array_equal(local.histograms, remote.histograms)),
        "max_abs_auc_diff": float(np.abs(local.auc - remote.auc).max()),
        "all_s": {"local": local_runs, "distributed": distributed_runs},
    }


def gpu(store: Path, n: int) -> dict[str, object]:
    if not torch.cuda.is_available():
        return {"run": False, "reason": "no CUDA device on this machine"}
    campaign = open_campaign(store)
    nbytes = _bytes(campaign, n)
    compute_statistics(campaign, first_n=1, device="cuda")
    start = time.perf_counter()
    on_gpu = compute_statistics(campaign, first_n=n, device="cuda")
    gpu_s = time.perf_counter() - start
    start = time.perf_counter()
    on_cpu = compute_statistics(campaign, first_n=n)
    cpu_s = time.perf_counter() - start
    return {
        "run": True,
        "device": torch.cuda.get_device_name(0),
        "store_bytes": nbytes,
        "cuda_gb_per_s": nbytes / gpu_s / 1e9,
        "numpy_gb_per_s": nbytes / cpu_s / 1e9,
        "same_histograms": bool(np.array_equal(on_gpu.histograms, on_cpu.histograms)),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-gib", type=int, default=max(SIZES_GIB), help="largest store size (GiB)")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the temporary store")
    args = parser.parse_args(argv)
    sizes = [size for size in SIZES_GIB if size <= args.max_gib] or [1]
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_", dir=args.tmp))
    started = time.perf_counter()
    try:
        store = tmp / "campaign.zarr"
        start = time.perf_counter()
        write_campaign(store, max(sizes), SIDE, SIDE, n_bands=N_BANDS, chunk_yx=256)
        write_s = time.perf_counter() - start
        on_disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
        result: dict[str, object] = {
            "benchmark": "scale",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "store": {"gib": max(sizes), "write_s": write_s, "bytes_on_disk": on_disk},
            "cost_against_size": cost_against_size(store, sizes),
        }
        result["distributed"] = distributed_against_local(store, min(2, max(sizes)))
        print(json.dumps(result["distributed"], indent=1), flush=True)
        result["gpu"] = gpu(store, min(2, max(sizes)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["benchmark_s"] = time.perf_counter() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()

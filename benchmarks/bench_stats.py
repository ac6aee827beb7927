"""Statistics-engine benchmarks (issue 3), results in ``benchmarks/results/stats.json``.

1. Throughput of :func:`~bandselect.stats.compute_statistics` on a synthetic campaign store
   (``bandselect.synthetic.write_campaign``, 61 bands) against a bare ``dask.array`` read-and-sum of the
   same store in the same run (goal: ≥ 50 %). Reported for the moments pass alone (``n_bins=None``) and
   for the full two-pass job with histograms.
2. Against a straightforward in-memory reference on a 0.25 M-pixel × 61-band cube (all pixels in RAM,
   per-band ``roc_auc_score``, histogram MI, ``numpy.corrcoef``): equal answers (AUC within 1e-3,
   correlation 1e-9), and the speed-up, end to end from pixels and from merged statistics (goal ≥ 100×).
3. A ≥ 4 GB store reduced in a child process under ``/usr/bin/time -v``: peak RSS (goal ≤ 2 GB).

    python benchmarks/bench_stats.py                  # all three, temporary data removed afterwards
    python benchmarks/bench_stats.py --big-gib 0      # skip the big store
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import dask
import numpy as np

from bandselect.names import VAR_CUBE
from bandselect.stats import BandStatistics, compute_statistics, histogram_edges
from bandselect.synthetic import write_campaign

RESULTS = Path(__file__).resolve().parent / "results" / "stats.json"
N_BANDS = 61

_CHILD = """
import json, sys, time
from bandselect.stats import compute_statistics
from bandselect.store import open_campaign
start = time.perf_counter()
stats = compute_statistics(open_campaign(sys.argv[1]))
print(json.dumps({"wall_s": time.perf_counter() - start, "count": stats.count}))
"""


def _bare_read(campaign) -> float:
    sums = [campaign.open(i)[VAR_CUBE].data.sum(dtype="float64") for i in campaign.ids()]
    start = time.perf_counter()
    dask.compute(*sums, scheduler="threads")
    return time.perf_counter() - start


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _store_bytes(campaign) -> int:
    return sum(campaign.open(i)[VAR_CUBE].nbytes for i in campaign.ids())


def throughput(tmp: Path, n_acquisitions: int = 4, size: int = 1024) -> dict[str, object]:
    campaign = write_campaign(tmp / "throughput", n_acquisitions, size, size, n_bands=N_BANDS, chunk_yx=256)
    nbytes = _store_bytes(campaign)
    _bare_read(campaign)  # warm the page cache for every contender alike
    bare = min(_bare_read(campaign) for _ in range(2))
    moments = min(_timed(lambda: compute_statistics(campaign, n_bins=None)) for _ in range(2))
    full = _timed(lambda: compute_statistics(campaign))
    return {"store_bytes": nbytes, "bare_read_sum_s": bare, "moments_pass_s": moments,
            "two_pass_with_histograms_s": full, "bare_gb_per_s": nbytes / bare / 1e9,
            "moments_gb_per_s": nbytes / moments / 1e9, "two_pass_gb_per_s": nbytes / full / 1e9,
            "moments_fraction_of_bare": bare / moments, "two_pass_fraction_of_bare": bare / full,
            "goal_fraction": 0.5}


def _reference(x: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_auc_score

    auc = np.array([roc_auc_score(y, x[:, c]) for c in range(x.shape[1])])
    auc = np.maximum(auc, 1 - auc)
    mi = np.zeros(x.shape[1])
    for c in range(x.shape[1]):
        edges = np.linspace(x[:, c].min(), x[:, c].max(), n_bins + 1)
        joint = np.stack([np.histogram(x[y == k, c], bins=edges)[0] for k in (False, True)]) / y.size
        outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
        nz = joint > 0
        mi[c] = np.sum(joint[nz] * np.log(joint[nz] / outer[nz]))
    return auc, mi, np.corrcoef(x.T)


def in_memory(n_pixels: int = 250_000, n_bins: int = 2048) -> dict[str, object]:
    rng = np.random.default_rng(0)
    y = rng.random(n_pixels) < 0.05
    x = (rng.normal(size=(n_pixels, N_BANDS)) + 0.4 * y[:, None] * (np.arange(N_BANDS) % 7 == 0))
    x = x.astype(np.float32)
    start = time.perf_counter()
    ref_auc, ref_mi, ref_corr = _reference(x.astype(np.float64), y, n_bins)
    reference_s = time.perf_counter() - start

    def ours() -> BandStatistics:
        first = BandStatistics.from_arrays(x, y)
        edges = histogram_edges(first.minimum, first.maximum, n_bins)
        return BandStatistics.from_arrays(x, y, hist_edges=edges)

    ours()
    start = time.perf_counter()
    stats = ours()
    pixels_s = time.perf_counter() - start
    start = time.perf_counter()
    auc, mi, corr = stats.auc, stats.mi, stats.correlation
    scores_s = time.perf_counter() - start
    return {"n_pixels": n_pixels, "n_bands": N_BANDS, "n_bins": n_bins, "reference_s": reference_s,
            "ours_from_pixels_s": pixels_s, "ours_scores_from_statistics_s": scores_s,
            "speedup_from_pixels": reference_s / pixels_s, "speedup_from_statistics": reference_s / scores_s,
            "max_abs_auc_diff": float(np.abs(auc - ref_auc).max()),
            "max_abs_mi_diff": float(np.abs(mi - ref_mi).max()),
            "max_abs_corr_diff": float(np.abs(corr - ref_corr).max()), "goal_speedup": 100}


def big_store(tmp: Path, size_gib: float) -> dict[str, object]:
    side = 2048
    per_acquisition = side * side * N_BANDS * 4
    n = max(1, int(np.ceil(size_gib * 2**30 / per_acquisition)))
    start = time.perf_counter()
    campaign = write_campaign(tmp / "big", n, side, side, n_bands=N_BANDS, chunk_yx=256)
    write_s = time.perf_counter() - start
    command = [sys.executable, "-c", _CHILD, str(campaign.path)]
    timer = Path("/usr/bin/time")
    if timer.exists():
        command = [str(timer), "-v", *command]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    child = json.loads(run.stdout.strip().splitlines()[-1])
    peak_kib = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    nbytes = _store_bytes(campaign)
    return {"store_bytes": nbytes, "n_acquisitions": n, "write_s": write_s, "wall_s": child["wall_s"],
            "gb_per_s_two_pass": nbytes / child["wall_s"] / 1e9, "pixels": child["count"],
            "peak_rss_bytes": None if peak_kib is None else int(peak_kib.group(1)) * 1024,
            "measured_with": "/usr/bin/time -v" if timer.exists() else "none",
            "goal_peak_rss_bytes": 2 * 10**9}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-gib", type=float, default=4.2, help="size of the big store (0: skip)")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for temporary stores")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_stats_", dir=args.tmp))
    try:
        result: dict[str, object] = {
            "benchmark": "stats", "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": platform.platform(), "cpus": __import__("os").cpu_count(),
            "in_memory": in_memory(), "throughput": throughput(tmp)}
        print(json.dumps(result["in_memory"], indent=1))
        print(json.dumps(result["throughput"], indent=1))
        if args.big_gib > 0:
            result["big_store"] = big_store(tmp, args.big_gib)
            print(json.dumps(result["big_store"], indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()

"""Statistics-engine benchmarks (issues 3 and 15), results in ``benchmarks/results/stats.json``.

1. ``fit()`` of a supervised selector on a 262,144 px × 61 band cube, timed from its first call in a fresh
   process (cold: the process has imported ``bandselect.selectors`` and nothing else; that import, which
   loads the compiled statistics kernels, is timed apart), against the
   straightforward in-memory reference on the same cube in the same run (all pixels in RAM, per-band
   ``roc_auc_score``, histogram MI, ``numpy.corrcoef``; cuvis-ai 0.19.3's fit took 0.96× its time in the
   issue's measurement). Equal answers: AUC within 1e-3, correlation 1e-9. Goal ≥ 100×.
2. The whole statistics job of a synthetic campaign store (``bandselect.synthetic.write_campaign``,
   61 bands) — one read: moments, Gram matrices, min/max and histograms, edges from the ranges recorded at
   ingest — against a bare ``dask.array`` read-and-sum of the same store in the same run (goal ≥ 50 %);
   also the moments alone and the job that scans the ranges first (two reads, what every job did before).
3. The torch backend against the NumPy kernels on the same cube and store: on the CPU here, on CUDA when
   the machine has a GPU (GB/s of float32 pixels).

    python benchmarks/bench_stats.py

Cost against store size (1-8 GB), peak RSS and the distributed cluster: ``benchmarks/bench_scale.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import dask
import numpy as np
import torch

from bandselect import storage
from bandselect.names import VAR_CUBE
from bandselect.stats import compute_statistics, statistics_of, statistics_without, update_campaign_statistics
from bandselect.stats.binning import DEFAULT_N_BINS
from bandselect.stats.incremental import statistics_dir
from bandselect.synthetic import vnir_wavelengths, write_campaign

RESULTS = Path(__file__).resolve().parent / "results" / "stats.json"
N_BANDS = 61
SIDE = 512  # 512 × 512 = 262,144 pixels

_CHILD = """
import json, sys, time
start = time.perf_counter()
import numpy as np
from bandselect.selectors import SupervisedWindowedFalseRGBSelector
imported_s = time.perf_counter() - start
data = np.load(sys.argv[1])
cube, mask, wavelengths = data["cube"], data["mask"], data["wavelengths"]
selector = SupervisedWindowedFalseRGBSelector(num_spectral_bands=cube.shape[-1])
start = time.perf_counter()
selector.fit(cube, mask, wavelengths)
first_s = time.perf_counter() - start
warm = []
for _ in range(5):
    start = time.perf_counter()
    selector.fit(cube, mask, wavelengths)
    warm.append(time.perf_counter() - start)
bands = [int(i) for i in selector.selection(wavelengths).indices]
print(json.dumps({"import_s": imported_s, "first_s": first_s, "warm_s": warm, "bands": bands}))
"""


def _timed(function) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _cube(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(SIDE * SIDE) < 0.05
    x = rng.normal(size=(SIDE * SIDE, N_BANDS)) + 0.4 * y[:, None] * (np.arange(N_BANDS) % 7 == 0)
    return x.astype(np.float32), y


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


def _child_fit(cube_file: Path, one_thread: bool) -> dict[str, object]:
    env = dict(os.environ)
    if one_thread:  # from_arrays splits over threads only as far as the BLAS limit allows
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, str(cube_file)], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def fit_from_first_call(tmp: Path, processes: int = 5, references: int = 3) -> dict[str, object]:
    """``fit()`` cold in fresh processes (default threads and one thread) against the reference.

    One cold call is one sample, and this shared 2-core host spreads single timings by ±20 %: the
    first call is measured in ``processes`` fresh processes (default threads; one thread in as many)
    and the reference ``references`` times, alternated; the speedups are ratios of the medians.
    """
    x, y = _cube()
    cube_file = tmp / "cube.npz"
    wavelengths = vnir_wavelengths(N_BANDS)
    cube, mask = x.reshape(1, SIDE, SIDE, N_BANDS), y.reshape(1, SIDE, SIDE)
    np.savez(cube_file, cube=cube, mask=mask, wavelengths=wavelengths)
    load = os.getloadavg()[0]
    x64 = x.astype(np.float64)
    reference_runs: list[float] = []
    defaults: list[dict[str, object]] = []
    singles: list[dict[str, object]] = []
    for i in range(max(processes, references)):
        if i < references:
            start = time.perf_counter()
            ref_auc, ref_mi, ref_corr = _reference(x64, y, DEFAULT_N_BINS)
            reference_runs.append(time.perf_counter() - start)
        if i < processes:
            defaults.append(_child_fit(cube_file, one_thread=False))
            singles.append(_child_fit(cube_file, one_thread=True))
    reference_s = float(np.median(reference_runs))
    firsts = [float(run["first_s"]) for run in defaults]  # type: ignore[arg-type]
    first_s = float(np.median(firsts))
    single_first = float(np.median([float(run["first_s"]) for run in singles]))  # type: ignore[arg-type]
    warm = float(np.median([w for run in defaults for w in run["warm_s"]]))  # type: ignore[union-attr]
    single_warm = float(np.median([w for run in singles for w in run["warm_s"]]))  # type: ignore[union-attr]
    import_s = float(np.median([float(run["import_s"]) for run in defaults]))  # type: ignore[arg-type]
    stats = statistics_of(x, y)  # what fit() computes
    start = time.perf_counter()
    auc, mi, corr = stats.auc, stats.mi, stats.correlation
    scores_s = time.perf_counter() - start
    return {
        "n_pixels": int(x.shape[0]),
        "n_bands": N_BANDS,
        "n_bins": DEFAULT_N_BINS,
        "selector": "SupervisedWindowedFalseRGBSelector",
        "reference_s": reference_s,
        "reference_runs_s": reference_runs,
        "fit_first_call_s": first_s,
        "fit_first_call_runs_s": firsts,
        "fit_warm_median_s": warm,
        "fit_first_call_one_thread_s": single_first,
        "fit_warm_median_one_thread_s": single_warm,
        "import_selectors_s": import_s,
        # The honest whole for a one-off fit in a fresh process: importing the library (torch, numba and
        # the cached compiled kernels) and the first call.
        "import_and_first_call_s": import_s + first_s,
        "speedup_first_call": reference_s / first_s,
        "speedup_first_call_range": [reference_s / max(firsts), reference_s / min(firsts)],
        "speedup_warm": reference_s / warm,
        "speedup_first_call_one_thread": reference_s / single_first,
        "speedup_from_statistics": reference_s / scores_s,
        "selected_bands": defaults[0]["bands"],
        "same_bands_every_process": all(run["bands"] == defaults[0]["bands"] for run in defaults + singles),
        "max_abs_auc_diff": float(np.abs(auc - ref_auc).max()),
        "max_abs_mi_diff": float(np.abs(mi - ref_mi).max()),
        "max_abs_corr_diff": float(np.abs(corr - ref_corr).max()),
        "goal_speedup": 100,
        "cuvis_ai_fit_to_reference": 0.96,
        "load_average_1min_before": load,
        "protocol": f"reference in this process ({references} runs) alternated with {processes} fresh child "
        "processes (default threads) and as many on one thread, each of which imported "
        "bandselect.selectors, made its first fit() call, then 5 warm calls; speedups are ratios of "
        "the medians (the range: of the reference median to each process's first call)",
    }


def _bare_read(campaign) -> float:  # type: ignore[no-untyped-def]
    # Timed from opening the acquisitions, as the job is (compute_statistics opens them itself).
    start = time.perf_counter()
    sums = [campaign.open(i)[VAR_CUBE].data.sum(dtype="float64") for i in campaign.ids()]
    dask.compute(*sums, scheduler="threads")
    return time.perf_counter() - start


def _store_bytes(campaign) -> int:  # type: ignore[no-untyped-def]
    return sum(campaign.open(i)[VAR_CUBE].nbytes for i in campaign.ids())


def _ignore_label_job(campaign, one_read: bool) -> float:  # type: ignore[no-untyped-def]
    """A flow's statistics step with ``ignore_label=0`` from nothing stored: the statistics and the kept
    pixels' (background left out) in one read, or as before, the statistics and then a pass of their own."""
    storage.remove_tree(statistics_dir(campaign))
    start = time.perf_counter()
    stored = update_campaign_statistics(campaign, ignore_label=0 if one_read else None)
    statistics_without(campaign, stored, 0)
    return time.perf_counter() - start


def throughput(tmp: Path, n_acquisitions: int = 4, size: int = 1024, rounds: int = 3) -> dict[str, object]:
    """The one-read job, the moments alone and the two-read job against a bare read-and-sum; the same for
    a flow's statistics step with an ``ignore_label``."""
    campaign = write_campaign(tmp / "throughput", n_acquisitions, size, size, n_bands=N_BANDS, chunk_yx=256)
    nbytes = _store_bytes(campaign)
    _bare_read(campaign)  # warm the page cache for every contender alike
    load = os.getloadavg()[0]
    # Interleaved rounds, best of each: the shared machine's load changes from one second to the next.
    names = ("bare", "moments", "one_read", "two_reads", "ignore_label_one_read", "ignore_label_two_reads")
    timings: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        timings["bare"].append(_bare_read(campaign))
        timings["moments"].append(_timed(lambda: compute_statistics(campaign, n_bins=None)))
        timings["one_read"].append(_timed(lambda: compute_statistics(campaign)))
        timings["two_reads"].append(_timed(lambda: compute_statistics(campaign, use_recorded_ranges=False)))
        timings["ignore_label_one_read"].append(_ignore_label_job(campaign, one_read=True))
        timings["ignore_label_two_reads"].append(_ignore_label_job(campaign, one_read=False))
    best = {name: min(values) for name, values in timings.items()}
    return {
        "store_bytes": nbytes,
        "bare_read_sum_s": best["bare"],
        "moments_pass_s": best["moments"],
        "one_read_job_s": best["one_read"],
        "two_read_job_s": best["two_reads"],
        "bare_gb_per_s": nbytes / best["bare"] / 1e9,
        "one_read_gb_per_s": nbytes / best["one_read"] / 1e9,
        "moments_fraction_of_bare": best["bare"] / best["moments"],
        "one_read_fraction_of_bare": best["bare"] / best["one_read"],
        "two_read_fraction_of_bare": best["bare"] / best["two_reads"],
        "ignore_label_one_read_job_s": best["ignore_label_one_read"],
        "ignore_label_two_read_job_s": best["ignore_label_two_reads"],
        "ignore_label_one_read_fraction_of_bare": best["bare"] / best["ignore_label_one_read"],
        "ignore_label_two_read_fraction_of_bare": best["bare"] / best["ignore_label_two_reads"],
        "goal_fraction": 0.5,
        "protocol": "best of interleaved rounds; the bare read-and-sum and every job timed from opening "
        "the acquisitions (campaign.open) to the result; the ignore_label jobs (label 0, the background) "
        "from no stored statistics to statistics_without's result, written to the store's sidecar",
        "rounds": rounds,
        "threads": os.cpu_count(),
        "load_average_1min_before": load,
        "all_s": timings,
    }


def torch_backend(tmp: Path) -> dict[str, object]:
    """The torch backend's statistics against NumPy's, in memory and over the throughput store."""
    x, y = _cube(1)
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    statistics_of(x, y)  # warm
    numpy_s = min(_timed(lambda: statistics_of(x, y)) for _ in range(3))
    result: dict[str, object] = {"numpy_in_memory_s": numpy_s, "gpu_available": torch.cuda.is_available()}
    campaign = write_campaign(tmp / "throughput", 4, 1024, 1024, n_bands=N_BANDS, chunk_yx=256)  # reused
    nbytes = campaign.open(campaign.ids()[0])[VAR_CUBE].nbytes  # the first acquisition (256 MB)
    store_numpy_s = min(_timed(lambda: compute_statistics(campaign, first_n=1)) for _ in range(2))
    result["numpy_store_gb_per_s"] = nbytes / store_numpy_s / 1e9
    for device in devices:
        statistics_of(x, y, device=device)
        seconds = min(_timed(lambda d=device: statistics_of(x, y, device=d)) for _ in range(3))
        same = statistics_of(x, y, device=device)
        reference = statistics_of(x, y)
        store_s = min(
            _timed(lambda d=device: compute_statistics(campaign, first_n=1, device=d)) for _ in range(2)
        )
        result[device] = {
            "in_memory_s": seconds,
            "in_memory_gb_per_s": x.nbytes / seconds / 1e9,
            "relative_to_numpy": numpy_s / seconds,
            "store_gb_per_s": nbytes / store_s / 1e9,
            "histograms_equal": bool(np.array_equal(same.histograms, reference.histograms)),
            "max_abs_corr_diff": float(np.abs(same.correlation - reference.correlation).max()),
        }
    if not torch.cuda.is_available():
        result["cuda"] = "not run: no GPU on this machine"
    return result


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tmp", type=Path, default=None, help="folder for temporary stores")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_stats_", dir=args.tmp))
    started = time.perf_counter()
    try:
        result: dict[str, object] = {
            "benchmark": "stats",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "in_memory": fit_from_first_call(tmp),
        }
        print(json.dumps(result["in_memory"], indent=1), flush=True)
        result["throughput"] = throughput(tmp)
        print(json.dumps(result["throughput"], indent=1), flush=True)
        result["torch_backend"] = torch_backend(tmp)
        print(json.dumps(result["torch_backend"], indent=1), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["benchmark_s"] = time.perf_counter() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()

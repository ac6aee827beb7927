"""Flow benchmarks: export throughput vs bare zarr, and Prefect's per-acquisition overhead.

1. Export: :func:`bandselect.export.export_composite` (three bands of every acquisition into the
   composites store, staged and published atomically, no PNG) against a bare zarr loop over the same
   data (read each chunk row of the cube, keep three bands, write them to a zarr array with the same
   chunks and codec). Both read and decode the whole cube (its chunks hold the full spectrum), which
   dominates. Goal: export throughput >= 50 % of the bare loop.
2. Prefect overhead: ``process_campaign`` over an archive of 100 small acquisitions against the same
   steps run as plain functions (every task's ``.fn`` in the flow's order, same MLflow logging), each on
   its own copy of the archive's output paths. The ephemeral Prefect API is started by a warm-up run
   first (its start-up is reported separately). Goal: (flow - plain) / flow < 5 %.

    python benchmarks/bench_flows.py            # writes benchmarks/results/flows.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from bench_common import machine_info, write_results

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

RESULTS = Path(__file__).resolve().parent / "results" / "flows.json"
RGB = (45, 30, 15)


def bench_export(root: Path, n_acquisitions: int, size: int, repeats: int) -> dict[str, object]:
    import zarr

    from bandselect.export import export_composite
    from bandselect.selection import BandSelection
    from bandselect.synthetic import write_campaign

    campaign = write_campaign(root / "export.zarr", n_acquisitions, size, size, seed=1, chunk_yx=256)
    ids = campaign.ids()
    nbytes = sum(int(np.prod(campaign.open(i)["cube"].shape)) * 4 for i in ids)
    spec = BandSelection.create(RGB, campaign.wavelengths, selector_type="bench")

    def bare(target: Path) -> None:
        out = zarr.open_group(str(target), mode="w", zarr_format=3)
        for acquisition_id in ids:
            cube = zarr.open_array(str(Path(campaign.path) / acquisition_id / "cube"), mode="r")
            height, width, _ = cube.shape
            chunk_rows, chunk_cols = cube.chunks[0], cube.chunks[1]
            array = out.create_array(
                acquisition_id, shape=(height, width, 3), chunks=(chunk_rows, chunk_cols, 3), dtype="float32"
            )
            for y in range(0, height, chunk_rows):
                array[y : y + chunk_rows] = cube[y : y + chunk_rows][:, :, list(RGB)]

    def ours(target: Path) -> None:
        for acquisition_id in ids:
            export_composite(campaign, acquisition_id, target, spec)

    timings: dict[str, list[float]] = {"bare_zarr": [], "export": []}
    for repeat in range(repeats):
        for name, function in (("bare_zarr", bare), ("export", ours)):
            target = root / f"{name}-{repeat}.zarr"
            start = time.perf_counter()
            function(target)
            timings[name].append(time.perf_counter() - start)
            shutil.rmtree(target)
    best = {name: min(values) for name, values in timings.items()}
    return {
        "acquisitions": n_acquisitions,
        "shape": [size, size, 61],
        "source_mb": round(nbytes / 1e6, 1),
        "seconds_best": {k: round(v, 3) for k, v in best.items()},
        "seconds_all": {k: [round(v, 3) for v in vs] for k, vs in timings.items()},
        "throughput_mb_s": {k: round(nbytes / 1e6 / v, 1) for k, v in best.items()},
        "ratio_export_to_bare": round(best["bare_zarr"] / best["export"], 3),
        "goal": ">= 0.5",
    }


def _archive(folder: Path, count: int, size: int, n_bands: int) -> None:
    from bandselect.synthetic import make_scene

    folder.mkdir(parents=True)
    for index in range(count):
        scene = make_scene(size, size, n_bands=n_bands, seed=index, anomaly_fraction=0.03)
        np.savez(
            folder / f"scene_{index:03d}.npz",
            cube=scene.cube,
            wavelengths_nm=scene.wavelengths_nm,
            mask=scene.mask.astype(np.uint8),
        )


def _config(root: Path, archive: Path, name: str) -> dict[str, object]:
    return {
        "campaign": "bench",
        "archive": str(archive),
        "store": str(root / name / "store.zarr"),
        "output": str(root / name / "composites.zarr"),
        "pipeline": {
            "nodes": {"rgb": {"type": "BaselineFalseRGBSelector", "config": {}}},
            "connections": [["data.cube", "rgb.cube"], ["data.wavelengths", "rgb.wavelengths"]],
        },
        "statistics": {"n_bins": 64},
        "tracking": {"tracking_uri": f"sqlite:///{root / name / 'mlflow.db'}"},
    }


def _plain_run(config_data: dict[str, object]) -> dict[str, int]:
    """The flow's steps as plain function calls (each task's ``.fn``), same order and logging."""
    from bandselect import tasks, tracking
    from bandselect.export import composite_config_hash, status_counts
    from bandselect.flows import ProcessCampaignConfig, load_config
    from bandselect.store import open_campaign
    from bandselect.store.locking import locked

    config = load_config(config_data, ProcessCampaignConfig)
    store, output, work = str(config.store), str(config.output), config.resolved_work_dir
    work.mkdir(parents=True, exist_ok=True)
    with locked([config.store, config.output]):
        tasks.ingest_archive.fn(str(config.archive), store)
        ids = open_campaign(store).ids()
        stats = tasks.update_statistics.fn(store, config.statistics.n_bins)
        with tracking.start_run("bandselect", campaign="bench", tracking_uri=config.tracking_uri()) as run:
            ids_covered = list(stats.acquisition_ids)
            saved = tasks.initialise_selectors.fn(
                store, config.pipeline_mapping(), str(work), ids_covered, None, None, config.statistics.n_bins
            )
            selection = tasks.selection_of.fn(store, saved)
            records = [
                record
                for batch in tasks.batches(ids, config.export.batch_size)
                for record in tasks.export_composites.fn(
                    store, batch, output, selection, str(config.previews_dir), config.export.percentiles, {}
                )
            ]
            plots = tasks.draw_plots.fn(
                str(config.plots_dir), store, selection, saved.selector, None, output, ids
            )
            tasks.log_flow_run.fn(
                run.info.run_id,
                config.model_dump(mode="json"),
                selection,
                saved.selector,
                saved.directory,
                None,
                {"acquisition_ids": ids},
                {"config_hash": composite_config_hash(selection), "trained": False},
                plots,
                [r.preview for r in records if r.preview],
            )
    return status_counts(records)


def bench_overhead(root: Path, n_acquisitions: int, size: int, n_bands: int) -> dict[str, object]:
    """Flow vs the same steps as plain calls, on fresh stores each time, best of two alternated runs."""
    from bandselect.flows import process_campaign

    archive = root / "archive"
    _archive(archive, n_acquisitions, size, n_bands)
    warm_archive = root / "warm-archive"
    _archive(warm_archive, 2, size, n_bands)
    start = time.perf_counter()
    process_campaign(_config(root, warm_archive, "warmup"))  # starts the ephemeral API
    warmup_s = time.perf_counter() - start

    runs: dict[str, list[float]] = {"plain": [], "flow": []}
    for repeat in range(2):
        start = time.perf_counter()
        plain_counts = _plain_run(_config(root, archive, f"plain{repeat}"))
        runs["plain"].append(time.perf_counter() - start)
        start = time.perf_counter()
        summary = process_campaign(_config(root, archive, f"flow{repeat}"))
        runs["flow"].append(time.perf_counter() - start)
        published = (summary.exported.get("published"), plain_counts.get("published"))
        if published != (n_acquisitions, n_acquisitions):
            raise RuntimeError(f"runs differ: flow {summary.exported}, plain {plain_counts}")
    timings = {name: min(values) for name, values in runs.items()}
    overhead = timings["flow"] - timings["plain"]
    return {
        "acquisitions": n_acquisitions,
        "acquisition_shape": [size, size, n_bands],
        "seconds_all": {k: [round(v, 3) for v in vs] for k, vs in runs.items()},
        "export_batch_size": 32,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "prefect_overhead_s": round(overhead, 3),
        "prefect_overhead_fraction": round(overhead / timings["flow"], 4),
        "prefect_overhead_per_acquisition_ms": round(1000 * overhead / n_acquisitions, 2),
        "ephemeral_api_warmup_run_s": round(warmup_s, 2),
        "goal": "< 0.05 of the flow run",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export-acquisitions", type=int, default=3)
    parser.add_argument("--export-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--acquisitions", type=int, default=100)
    # 256 × 256 × 61 (16 MB): a modest frame of a 61-band snapshot camera. Prefect's overhead is a fixed
    # ~0.7 s per run (about 7 ms per acquisition), so its fraction shrinks as frames grow: 5.3 % with
    # 128 × 128 frames, 8 % with 32 × 32 × 16 toy frames on this machine.
    parser.add_argument("--acquisition-size", type=int, default=256)
    parser.add_argument("--acquisition-bands", type=int, default=61)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-flows-"))
    os.environ.setdefault("PREFECT_HOME", str(root / "prefect"))
    try:
        result = {
            "benchmark": "flows",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "export": bench_export(root, args.export_acquisitions, args.export_size, args.repeats),
            "process_campaign": bench_overhead(
                root, args.acquisitions, args.acquisition_size, args.acquisition_bands
            ),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    write_results(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

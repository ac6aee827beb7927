"""Training throughput: gradient steps/s streaming patches from a zarr campaign store vs in-memory arrays.

Writes a synthetic campaign (bandselect.synthetic) to a temporary folder, builds the two-phase recipe's
pipeline (bandselect/recipes/two_phase.yaml: SoftChannelSelector → RX → head → BCE + regularizers), and
times the same gradient steps (same seed, so the same random patches) twice in one run: patches read from
the store by a PatchDataModule (only the chunks under each patch, optionally in background workers), and
patches cut from the same cubes held in memory. Goal: streaming at most 1.5× slower. Both sides draw the
same number and size of patches per step, train the same model for the same steps, in one run.

Streaming reads whole chunks into a per-process LRU cache (``--cache-mib``, default the loader's 256 MiB,
which here holds the whole synthetic campaign, so it measures a warm cache after the first reads). A second
pair of runs measures the regime of a campaign much larger than the cache: a ``--small-cache-mib`` cache
(default 1/8 of the data) with chunk-aware sampling (``--patches-per-window`` patches per random window of
twice the patch size), against in-memory training on the same patches. Cache hit rates are measured in the
training process (no workers); a single persistent worker reads the same chunk sequence. Results, with the
device, in ``benchmarks/results/training.json``.

    python benchmarks/bench_training.py                  # CPU (or CUDA when available: --device auto)
    python benchmarks/bench_training.py --device cuda    # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from bandselect.pipeline import Pipeline
from bandselect.store import open_campaign
from bandselect.synthetic import write_campaign
from bandselect.training.gradient import GradientTrainer, resolve_device
from bandselect.training.patches import PatchDataModule
from bandselect.training.two_phase import resolve_pipeline

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"


def _pipeline(n_bands: int) -> Pipeline:
    pipeline = resolve_pipeline(None, n_bands)  # the recipe's pipeline
    selector = pipeline.nodes["selector"]
    # Logits from the data are not needed for timing: a uniform start, trainable.
    selector.fit_from_statistics(_UniformVariance(n_bands))
    selector.unfreeze()
    return pipeline


class _UniformVariance:
    def __init__(self, n_bands: int) -> None:
        self.variance = np.ones(n_bands)


def _time(datamodule: PatchDataModule, n_bands: int, epochs: int, device: str) -> float:
    """Seconds for ``epochs`` epochs of gradient training on ``datamodule``'s batches."""
    pipeline = _pipeline(n_bands)
    trainer = GradientTrainer(pipeline, datamodule, lr=0.05, max_epochs=epochs, device=device, progress=False)
    start = time.perf_counter()
    trainer.fit()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _hit_rate(datamodule: PatchDataModule, epochs: int) -> float:
    """The chunk cache hit rate of reading ``epochs`` epochs of ``datamodule`` in this process."""
    for epoch in range(epochs):
        datamodule.set_epoch(epoch)
        for _ in datamodule.train_dataloader():
            pass
    return datamodule.source.cache.hit_rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--acquisitions", type=int, default=2)
    parser.add_argument("--size", type=int, default=256, help="height = width of each acquisition")
    parser.add_argument("--bands", type=int, default=61)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    # 240 steps: long enough that the first reads of each chunk (a cold cache, a one-off cost of any
    # run) do not dominate; real trainings run thousands of steps.
    parser.add_argument("--steps", type=int, default=240, help="gradient steps per measurement")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers for the streaming run")
    parser.add_argument("--cache-mib", type=int, default=256, help="chunk cache per reading process")
    parser.add_argument("--small-cache-mib", type=float, default=None, help="default: 1/8 of the data")
    parser.add_argument("--patches-per-window", type=int, default=8, help="for the small-cache runs")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per measurement")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    device = resolve_device(args.device)
    per_epoch = max(1, args.steps // args.epochs)
    options = {
        "patch_size": args.patch,
        "batch_size": args.batch_size,
        "batches_per_epoch": per_epoch,
        "train_rows": (0.0, 1.0),
        "val_rows": None,
        "seed": 0,
    }
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        store = Path(tmp) / "campaign"
        write_campaign(
            store,
            args.acquisitions,
            args.size,
            args.size,
            n_bands=args.bands,
            seed=0,
            chunk_yx=(args.patch, args.patch),
        )
        campaign = open_campaign(store)
        datasets = [campaign.open(i) for i in campaign.ids()]
        cubes = np.stack([ds["cube"].values for ds in datasets])
        masks = np.stack([ds["mask"].values for ds in datasets])
        data_bytes = cubes.nbytes + masks.nbytes
        cache = args.cache_mib * 2**20
        small_cache = int(data_bytes / 8 if args.small_cache_mib is None else args.small_cache_mib * 2**20)
        windowed = {**options, "patches_per_window": args.patches_per_window}

        def memory(**extra: object) -> PatchDataModule:
            return PatchDataModule.from_arrays(cubes, masks, wavelengths=campaign.wavelengths, **extra)

        def stream(cache_bytes: int, **extra: object) -> PatchDataModule:
            return PatchDataModule.from_store(store, cache_bytes=cache_bytes, **extra)

        def timed(make: Callable[[], PatchDataModule], epochs: int = args.epochs) -> float:
            # Best of --repeats fresh datamodules (cold caches each time): the machine's cores may be
            # shared, and the minimum is the least disturbed measurement, taken alike for every side.
            return min(_time(make(), args.bands, epochs, str(device)) for _ in range(args.repeats))

        timed(lambda: memory(**options), 1)  # warm-up (allocations, CUDA context)
        memory_s = timed(lambda: memory(**options))
        stream_s = timed(lambda: stream(cache, num_workers=args.workers, **options))
        stream0_s = timed(lambda: stream(cache, **options))
        uncached_s = timed(lambda: stream(0, **options))
        memory_w_s = timed(lambda: memory(**windowed))
        small_s = timed(lambda: stream(small_cache, num_workers=args.workers, **windowed))
        small0_s = timed(lambda: stream(small_cache, **windowed))
        # Hit rates of one epoch sequence read in this process (a single worker reads the same sequence).
        hit_rate, small_hit_rate = (
            _hit_rate(stream(cache, **options), args.epochs),
            _hit_rate(stream(small_cache, **windowed), args.epochs),
        )
    steps = per_epoch * args.epochs
    result = {
        "benchmark": "training steps/s: streaming patches from a zarr store vs in-memory tensors",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "acquisitions": args.acquisitions,
        "acquisition_shape": [args.size, args.size, args.bands],
        "patch": args.patch,
        "batch_size": args.batch_size,
        "steps": steps,
        "repeats": args.repeats,
        "in_memory_steps_per_s": steps / memory_s,
        "streaming_steps_per_s": steps / stream_s,
        "streaming_workers": args.workers,
        "streaming_no_workers_steps_per_s": steps / stream0_s,
        "slowdown_streaming_vs_memory": memory_s and stream_s / memory_s,
        "slowdown_streaming_no_workers_vs_memory": stream0_s / memory_s,
        "cache_mib": args.cache_mib,
        "data_mib": data_bytes / 2**20,
        "cache_hit_rate": hit_rate,
        "streaming_uncached_no_workers_steps_per_s": steps / uncached_s,
        "slowdown_streaming_uncached_no_workers_vs_memory": uncached_s / memory_s,
        "small_cache": {
            "cache_mib": small_cache / 2**20,
            "patches_per_window": args.patches_per_window,
            "window": 2 * args.patch,
            "cache_hit_rate": small_hit_rate,
            "in_memory_steps_per_s": steps / memory_w_s,
            "streaming_steps_per_s": steps / small_s,
            "streaming_no_workers_steps_per_s": steps / small0_s,
            "slowdown_streaming_vs_memory": small_s / memory_w_s,
            "slowdown_streaming_no_workers_vs_memory": small0_s / memory_w_s,
        },
        "goal": "slowdown <= 1.5",
    }
    result["meets_goal"] = result["slowdown_streaming_vs_memory"] <= 1.5
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

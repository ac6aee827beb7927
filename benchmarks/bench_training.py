"""Training throughput: gradient steps/s streaming patches from a zarr campaign store vs in-memory arrays.

Writes a synthetic campaign (bandselect.synthetic) to a temporary folder, builds the two-phase recipe's
pipeline (bandselect/recipes/two_phase.yaml: SoftChannelSelector → RX → head → BCE + regularizers), and times the
same gradient steps (same seed, so the same random patches) twice in one run: patches read from the store
by a PatchDataModule (only the chunks under each patch, optionally in background workers), and patches cut
from the same cubes held in memory. Goal: streaming at most 1.5× slower. Results, with the device, in
``benchmarks/results/training.json``.

    python benchmarks/bench_training.py                  # CPU (or CUDA when available: --device auto)
    python benchmarks/bench_training.py --device cuda    # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from bandselect.pipeline import Pipeline
from bandselect.store import open_campaign
from bandselect.synthetic import write_campaign
from bandselect.training.gradient import GradientTrainer, resolve_device
from bandselect.training.loader import PatchDataModule
from bandselect.training.two_phase import _pipeline_config, load_recipe

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"


def _pipeline(n_bands: int) -> Pipeline:
    pipeline = Pipeline.from_config(_pipeline_config(load_recipe()["pipeline"], n_bands))
    selector = pipeline.nodes["selector"]
    # Logits from the data are not needed for timing: a uniform start, trainable.
    selector.fit_from_statistics(_UniformVariance(n_bands))
    selector.unfreeze()
    return pipeline


class _UniformVariance:
    def __init__(self, n_bands: int) -> None:
        self.variance = np.ones(n_bands)


def _time(datamodule: PatchDataModule, n_bands: int, epochs: int, device: str) -> float:
    pipeline = _pipeline(n_bands)
    trainer = GradientTrainer(pipeline, datamodule, lr=0.05, max_epochs=epochs, device=device, progress=False)
    start = time.perf_counter()
    trainer.fit()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--acquisitions", type=int, default=2)
    parser.add_argument("--size", type=int, default=256, help="height = width of each acquisition")
    parser.add_argument("--bands", type=int, default=61)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=48, help="gradient steps per measurement")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers for the streaming run")
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
        in_memory = PatchDataModule.from_arrays(cubes, masks, wavelengths=campaign.wavelengths, **options)
        streaming = PatchDataModule.from_store(store, num_workers=args.workers, **options)
        _time(in_memory, args.bands, 1, str(device))  # warm-up (allocations, CUDA context)
        memory_s = _time(in_memory, args.bands, args.epochs, str(device))
        stream_s = _time(streaming, args.bands, args.epochs, str(device))
        stream0_s = _time(PatchDataModule.from_store(store, **options), args.bands, args.epochs, str(device))
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
        "in_memory_steps_per_s": steps / memory_s,
        "streaming_steps_per_s": steps / stream_s,
        "streaming_workers": args.workers,
        "streaming_no_workers_steps_per_s": steps / stream0_s,
        "slowdown_streaming_vs_memory": memory_s and stream_s / memory_s,
        "slowdown_streaming_no_workers_vs_memory": stream0_s / memory_s,
        "goal": "slowdown <= 1.5",
    }
    result["meets_goal"] = result["slowdown_streaming_vs_memory"] <= 1.5
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

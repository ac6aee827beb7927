"""Learnable selection on the shared scenes: test RX AUROC of the hard top-3 after training (issue 11).

Protocol (honest, three spatial parts of every acquisition): rows [0, 1/3) train (gradient steps), rows
[1/3, 2/3) validate (pick the epoch: the best RX AUROC of the hard top-3 among the epochs at the
temperature floor, measured as the test is, ``selection.rx_auroc``), rows [2/3, 1] test: the number
reported, seen by neither. Measure: RX on the 3 selected bands,
background statistics from the training rows' negative pixels, AUROC on the test rows
(:func:`bandselect.training.two_phase.selection_auroc`, averaged over acquisitions), for every selector
alike. The statistical selectors are fitted on the training and validation rows together (every labelled
pixel a learnable selector used), so they are not handicapped.

Tasks: pavia (binary anomaly mask), samson classes 1-3 and jasper classes 1-4 one against the rest, the
synthetic campaign of the demo (3 acquisitions 96 x 128, anomalies planted in 550/558/782/790 nm), and
MUUFL (3 target pixels: one per part, so its test AUROC is the rank of a single pixel; reported, not in
the goal). Jasper's bands are sorted by wavelength first (its source lists two overlapping spectrometers).

Learnable selectors (three seeds each; a seed sets the Gumbel noise and the training):

- ``soft_subset_uniform``: SoftChannelSelector, the default relaxed top-k, from uniform logits, with
  the seed's schedule (5 → 0.1, decay 0.9) and regularizer weights (entropy 0.01, diversity 0.05): the
  shipped recipe (the default);
- ``soft_subset_seed``: the same from the seed's variance initialisation (the default until the
  samson measurements of docs/learnable.md);
- ``soft_softmax_seed``: the same with the seed's softmax relaxation;
- ``soft_softmax_issue5``: the issue-5 recipe's selector (softmax, floor 0.7, decay 0.8, diversity 1.0);
- ``concrete_seed``: ConcreteBandSelector with the seed's schedule and regularizer weights.

All train in the recipe's pipeline (RX with ``background: batch_negatives``, ``eps: 1.0``, or the
detector's 1e-3 behind Concrete's three outputs; the increasing score head; BCE;
:func:`bandselect.training.learnable.training_pipeline`), 50 epochs of 8 steps, each step on the whole
training part of one acquisition, Adam lr 0.2. Beside them: the variance initialisation (hard top-3),
the separability and mRMR selectors (SupervisedFullSpectrumBandSelector), random 3 bands (mean of 20
draws) and all bands. Goal: the default learnable selector matches or beats the best statistical selector
(≥ best − 0.002, mean of the seeds) on every task, and its three seeds pick the same bands or neighbours
(±1 band). Times are CPU seconds of wall clock per epoch (one torch thread per training, two trainings at
a time); no GPU was available to this run.

    python benchmarks/bench_learnable.py                    # everything (about 2 h on 2 busy cores)
    python benchmarks/bench_learnable.py --tasks pavia --seeds 0 --variants soft_subset_seed
    python benchmarks/bench_learnable.py --variants soft_softmax_seed --merge   # add to the results

The results record what was trained (``variants_run``, ``seeds``, ``tasks_run``, ``invocations``); with
``--merge`` the new trainings join those already in ``--output`` and its baselines are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import torch

DATA_DIR = Path(
    os.environ.get("BANDSELECT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
RESULTS = Path(__file__).resolve().parent / "results" / "learnable.json"
K = 3
SEEDS = (0, 1, 2)
N_RANDOM = 20
GOAL_MARGIN = 0.002
ROWS = {"train_rows": (0.0, 1 / 3), "val_rows": (1 / 3, 2 / 3), "test_rows": (2 / 3, 1.0)}
SEED_SCHEDULE = {"temperature_init": 5.0, "temperature_min": 0.1, "temperature_decay": 0.9}
SEED_WEIGHTS = {"entropy": 0.01, "diversity": 0.05}
VARIANTS: dict[str, dict[str, Any]] = {
    "soft_subset_seed": {
        "type": "SoftChannelSelector",
        "relaxation": "subset",
        **SEED_SCHEDULE,
        **SEED_WEIGHTS,
    },
    "soft_subset_uniform": {
        "type": "SoftChannelSelector",
        "relaxation": "subset",
        "init_method": "uniform",
        **SEED_SCHEDULE,
        **SEED_WEIGHTS,
    },
    "soft_subset_uniform_st": {
        "type": "SoftChannelSelector",
        "relaxation": "subset",
        "init_method": "uniform",
        "straight_through": True,
        **SEED_SCHEDULE,
        **SEED_WEIGHTS,
    },
    # The recipe with RX's relative ridge at 0.03 instead of 1.0 (docs/learnable.md, "RX's ridge").
    "soft_subset_uniform_rx003": {
        "type": "SoftChannelSelector",
        "relaxation": "subset",
        "init_method": "uniform",
        "rx_eps": 0.03,
        **SEED_SCHEDULE,
        **SEED_WEIGHTS,
    },
    "soft_softmax_seed": {
        "type": "SoftChannelSelector",
        "relaxation": "softmax",
        **SEED_SCHEDULE,
        **SEED_WEIGHTS,
    },
    "soft_softmax_issue5": {
        "type": "SoftChannelSelector",
        "relaxation": "softmax",
        "temperature_init": 5.0,
        "temperature_min": 0.7,
        "temperature_decay": 0.8,
        "entropy": 0.01,
        "diversity": 1.0,
    },
    "concrete_seed": {"type": "ConcreteBandSelector", **SEED_SCHEDULE, **SEED_WEIGHTS},
    # soft_subset_uniform, then the trained subset refined on the validation rows (each band within 3 of
    # the trained one, train_two_phase's refine_selection): the recipe before refine_window "all".
    "soft_subset_uniform_refined": {
        "type": "SoftChannelSelector",
        "relaxation": "subset",
        "init_method": "uniform",
        **SEED_SCHEDULE,
        **SEED_WEIGHTS,
        "refine_window": 3,
    },
    # The recipe as shipped: soft_subset_uniform, then the local search of the trained subset on the
    # validation rows with every band free to move (refine_window "all").
    "soft_subset_uniform_search": {
        "type": "SoftChannelSelector",
        "relaxation": "subset",
        "init_method": "uniform",
        **SEED_SCHEDULE,
        **SEED_WEIGHTS,
        "refine_window": "all",
    },
    # The seed's variance start with the same search (does the start matter once the search runs?).
    "soft_subset_seed_search": {
        "type": "SoftChannelSelector",
        "relaxation": "subset",
        **SEED_SCHEDULE,
        **SEED_WEIGHTS,
        "refine_window": "all",
    },
    # Concrete with the same search (its own training unchanged: variance start).
    "concrete_seed_search": {
        "type": "ConcreteBandSelector",
        **SEED_SCHEDULE,
        **SEED_WEIGHTS,
        "refine_window": "all",
    },
}
DEFAULT_VARIANT = "soft_subset_uniform_search"
#: (task name, scene, label or None, in the goal)
TASKS: tuple[tuple[str, str, int | None, bool], ...] = (
    ("pavia", "pavia_rosis_abu_beach4", None, True),
    ("samson:1", "samson", 1, True),
    ("samson:2", "samson", 2, True),
    ("samson:3", "samson", 3, True),
    ("jasper:1", "jasper_ridge", 1, True),
    ("jasper:2", "jasper_ridge", 2, True),
    ("jasper:3", "jasper_ridge", 3, True),
    ("jasper:4", "jasper_ridge", 4, True),
    ("synthetic", "synthetic", None, True),
    ("muufl", "muufl_gulfport_tgt", None, False),
)


@dataclass(frozen=True)
class Task:
    """One labelled task: ``(A, H, W, C)`` acquisitions, binary masks, the grid (or a store path)."""

    name: str
    cube: np.ndarray
    mask: np.ndarray
    wavelengths_nm: np.ndarray
    in_goal: bool
    store: str | None = None


def _scene(scene: str, label: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(DATA_DIR / scene / f"{scene}.npz", allow_pickle=False) as archive:
        cube, gt, wavelengths = archive["cube"], archive["gt"], archive["wavelengths_nm"]
    order = np.argsort(wavelengths, kind="stable")
    cube = cube[..., order].astype(np.float32)
    if scene == "jasper_ridge":
        cube /= cube.max()  # raw uint16 counts: scaled to [0, 1] (RX and the selections do not depend on it)
    mask = gt > 0 if label is None else gt == label
    return cube[None], mask[None], wavelengths[order]


def tasks(names: list[str] | None, work: Path) -> Iterator[Task]:
    """The tasks named (default all); the synthetic campaign is written under ``work``."""
    for name, scene, label, in_goal in TASKS:
        if names and name not in names:
            continue
        if scene == "synthetic":
            from bandselect.synthetic import write_campaign

            campaign = write_campaign(
                work / "synthetic", n_acquisitions=3, height=96, width=128, seed=0, anomaly_fraction=0.01
            )
            datasets = [campaign.open(i) for i in campaign.ids()]
            cube = np.stack([ds["cube"].values for ds in datasets]).astype(np.float32)
            mask = np.stack([ds["mask"].values for ds in datasets]) > 0
            yield Task(name, cube, mask, np.asarray(campaign.wavelengths), in_goal, str(work / "synthetic"))
        elif (DATA_DIR / scene / f"{scene}.npz").is_file():
            yield Task(name, *_scene(scene, label), in_goal)
        else:
            print(f"skipped {name}: {DATA_DIR / scene} is absent (set BANDSELECT_SHARED_DATA)", flush=True)


def _rows(height: int, part: str) -> slice:
    from bandselect.training.samplers import row_range

    return slice(*row_range(height, ROWS[part]))


def _training(task: Task, seed: int, epochs: int) -> dict[str, Any]:
    height, width = task.cube.shape[1:3]
    part = _rows(height, "train_rows")
    return {
        **ROWS,
        "patch_size": (part.stop - part.start, width),
        "batch_size": 1,
        "batches_per_epoch": 8,
        "epochs": epochs,
        "seed": seed,
        "device": "cpu",
    }


def _data(task: Task) -> Any:
    from bandselect.training import TrainingData

    if task.store is not None:
        return TrainingData.from_store(task.store)
    return TrainingData.from_arrays(task.cube, task.mask, wavelengths_nm=task.wavelengths_nm)


def _train(job: tuple[Task, str, int, int]) -> dict[str, Any]:
    """One training (in a worker process): the variant's selector in the recipe's pipeline."""
    task, variant, seed, epochs = job
    torch.set_num_threads(1)
    from bandselect.pipeline.registry import get_node_class
    from bandselect.training import train_two_phase
    from bandselect.training.config import load_recipe
    from bandselect.training.learnable import training_pipeline

    settings = dict(VARIANTS[variant])
    kind = settings.pop("type")
    weights = {"entropy_loss": settings.pop("entropy"), "diversity_loss": settings.pop("diversity")}
    rx_eps = settings.pop("rx_eps", None)
    # Variants without the key were measured before the refinement existed: off, as they were.
    refine_window = settings.pop("refine_window", 0)
    config = {
        "n_select": K,
        "input_channels": task.cube.shape[-1],
        "init_method": "variance",
        "seed": seed,
        **settings,
    }
    node = get_node_class(kind)(**config)
    recipe = load_recipe()["pipeline"]
    for name, weight in weights.items():
        recipe["nodes"][name]["config"]["weight"] = weight
    if rx_eps is not None:
        recipe["nodes"]["rx"]["config"]["eps"] = rx_eps
    start = time.perf_counter()
    training = {**_training(task, seed, epochs), "refine_window": refine_window}
    result = train_two_phase(training_pipeline(node, recipe), _data(task), training)
    seconds = time.perf_counter() - start
    return {
        "task": task.name,
        "variant": variant,
        "seed": seed,
        "bands": sorted(result.selection_after.indices),
        "wavelengths_nm": [round(w, 1) for w in sorted(result.selection_after.wavelengths_nm)],
        "test_auroc": result.test_auroc_after,
        "val_auroc": result.val_auroc_after,
        "best_epoch": result.best_epoch,
        "trained_bands": sorted(result.trained_selection.indices),
        "refine_moves": [list(move) for move in result.refine_moves],
        "s_per_epoch": seconds / len(result.history),
    }


def _measure(task: Task, indices: Any) -> float:
    """The test RX AUROC of bands ``indices`` (the two-phase report's own measure)."""
    from bandselect.training.config import training_config
    from bandselect.training.two_phase import selection_auroc

    datamodule = _data(task).datamodule(training_config(_training(task, 0, 50)))
    value = selection_auroc(datamodule, np.asarray(indices), ROWS["test_rows"])
    return float("nan") if value is None else value


def statistical(task: Task) -> dict[str, Any]:
    """Variance, separability and mRMR fitted on the training and validation rows; random and all bands."""
    from bandselect.evaluation.compare import SelectorSpec, select_bands

    height = task.cube.shape[1]
    fit = slice(_rows(height, "train_rows").start, _rows(height, "val_rows").stop)
    cube, mask = task.cube[:, fit], task.mask[:, fit]
    specs = {
        "variance": SelectorSpec(
            "SoftChannelSelector", {"n_select": K, "init_method": "variance"}, train=False
        ),
        "separability": SelectorSpec(
            "SupervisedFullSpectrumBandSelector", {"criterion": "separability", "k": K}
        ),
        "mrmr": SelectorSpec("SupervisedFullSpectrumBandSelector", {"criterion": "mrmr", "k": K}),
    }
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        bands = sorted(select_bands(spec, cube, mask, task.wavelengths_nm).indices)
        out[name] = {"bands": bands, "test_auroc": _measure(task, bands)}
    rng = np.random.default_rng(0)
    draws = [_measure(task, rng.choice(task.cube.shape[-1], K, replace=False)) for _ in range(N_RANDOM)]
    out["random"] = {"test_auroc": float(np.mean(draws)), "std": float(np.std(draws))}
    out["all_bands"] = {"test_auroc": _measure(task, np.arange(task.cube.shape[-1]))}
    return out


def _seeds_agree(selections: list[list[int]]) -> bool:
    from bandselect.evaluation.stability import tolerant_matches

    return all(tolerant_matches(np.array(a), np.array(b), 1) == K for a, b in combinations(selections, 2))


def summarise(task: Task, stats: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One task's record: the baselines, every variant's seeds, and the goal check."""
    positives = [int(task.mask[:, _rows(task.cube.shape[1], part)].sum()) for part in ROWS]
    variants: dict[str, Any] = {}
    for variant in VARIANTS:
        mine = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
        if not mine:
            continue
        values = [r["test_auroc"] for r in mine]
        variants[variant] = {
            "seeds": mine,
            "test_auroc_mean": float(np.mean(values)),
            "test_auroc_min": float(np.min(values)),
            "seeds_agree": _seeds_agree([r["bands"] for r in mine]) if len(mine) > 1 else None,
            "s_per_epoch_mean": float(np.mean([r["s_per_epoch"] for r in mine])),
        }
    best_name = max(("variance", "separability", "mrmr"), key=lambda n: stats[n]["test_auroc"])
    record: dict[str, Any] = {
        "task": task.name,
        "in_goal": task.in_goal,
        "n_bands": int(task.cube.shape[-1]),
        "acquisitions": int(task.cube.shape[0]),
        "positives_train_val_test": positives,
        "statistical": stats,
        "best_statistical": best_name,
        "variants": variants,
    }
    if DEFAULT_VARIANT in variants:
        default = variants[DEFAULT_VARIANT]
        gap = default["test_auroc_mean"] - stats[best_name]["test_auroc"]
        record["goal"] = {
            "gap_to_best_statistical": gap,
            "matches": gap >= -GOAL_MARGIN,
            "seeds_agree": default["seeds_agree"],
        }
    return record


def _previous(path: Path) -> dict[str, Any]:
    """The trainings, baselines and wall time already recorded in ``path`` (for ``--merge``)."""
    if not path.is_file():
        raise SystemExit(f"--merge: {path} does not exist (run without --merge first)")
    recorded = json.loads(path.read_text())
    return {
        "runs": [
            seed for task in recorded["tasks"] for v in task["variants"].values() for seed in v["seeds"]
        ],
        "statistical": {task["task"]: task["statistical"] for task in recorded["tasks"]},
        "wall_s": float(recorded["wall_s"]),
        "invocations": recorded.get("invocations")
        or [{"variants": recorded["variants_run"], "seeds": recorded["seeds"], "wall_s": recorded["wall_s"]}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="*", default=None, help="task names (default: all)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add these trainings to the runs already in --output (same tasks; its baselines are reused)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    previous = _previous(args.output) if args.merge else None
    with tempfile.TemporaryDirectory(prefix="bench_learnable_") as tmp:
        chosen = list(tasks(args.tasks, Path(tmp)))
        jobs = [
            (task, variant, seed, args.epochs)
            for task in chosen
            for variant in args.variants
            for seed in args.seeds
        ]
        runs = []
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for run in pool.map(_train, jobs):
                runs.append(run)
                print(
                    f"[{len(runs)}/{len(jobs)}] {run['task']} {run['variant']} seed {run['seed']}: "
                    f"{run['bands']} test {run['test_auroc']:.4f} ({run['s_per_epoch']:.2f} s/epoch)",
                    flush=True,
                )
        if previous is not None:
            fresh = {(r["task"], r["variant"], r["seed"]) for r in runs}
            runs += [r for r in previous["runs"] if (r["task"], r["variant"], r["seed"]) not in fresh]
        records = [
            summarise(
                task,
                (previous["statistical"].get(task.name) if previous else None) or statistical(task),
                [r for r in runs if r["task"] == task.name],
            )
            for task in chosen
        ]
    variants_run = [v for v in VARIANTS if any(r["variant"] == v for r in runs)]
    seeds_run = sorted({r["seed"] for r in runs})
    goal_tasks = [r for r in records if r["in_goal"] and "goal" in r]
    result = {
        "benchmark": "learnable selection: test RX AUROC of the hard top-3 (train / validation / test rows)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "device": "cpu (no GPU available to this run)",
        "torch_threads_per_training": 1,
        "workers": args.workers,
        "epochs": args.epochs,
        "seeds": seeds_run,
        "rows": {k: list(v) for k, v in ROWS.items()},
        # What was trained (a subset of the benchmark's variants, seeds and tasks when asked).
        "variants_run": variants_run,
        "tasks_run": [task.name for task in chosen],
        "variants": {name: VARIANTS[name] for name in variants_run},
        "default_variant": DEFAULT_VARIANT,
        "goal": f"default mean test AUROC >= best statistical - {GOAL_MARGIN} on every task, seeds ±1 band",
        "wall_s": time.perf_counter() - started + (previous["wall_s"] if previous else 0.0),
        "invocations": [
            *(previous["invocations"] if previous else []),
            {
                "variants": list(args.variants),
                "seeds": list(args.seeds),
                "wall_s": time.perf_counter() - started,
            },
        ],
        "tasks": records,
        "summary": {
            "goal_tasks": len(goal_tasks),
            "matches": sum(bool(r["goal"]["matches"]) for r in goal_tasks),
            "seeds_agree": sum(bool(r["goal"]["seeds_agree"]) for r in goal_tasks),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1), f"{result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()

"""Selection quality on the shared real scenes: the quality bar of issue 7 for ``separability_select``.

Measure: AUROC of a standardised logistic regression (``StandardScaler`` + ``LogisticRegression`` in a
pipeline) on the 3 selected bands, stratified 5-fold cross-validation over pixels
(``cross_val_score(..., scoring="roc_auc")``, shuffled, seed 0). Bands are selected from
:class:`~bandselect.stats.BandStatistics` of the whole scene (2048 histogram bins).

Tasks: pavia (binary gt), samson classes 1, 2, 3 one-vs-rest, jasper classes 1..4 one-vs-rest: the 8 tasks
of the bar (goal: mean >= 0.99, every task >= 0.97). MUUFL (3 target pixels) is reported beside them but is
not part of the bar: stratified 5-fold CV is undefined with 3 positives (two folds would have none); it is
evaluated with 3 folds (one positive per test fold), which makes its AUROC a very noisy number.

Baselines: all bands, and the mean over 20 random 3-band draws (seed 0).

    python benchmarks/bench_quality.py   # writes benchmarks/results/quality.json and quality.md
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bandselect.stats import BandStatistics, histogram_edges, mrmr_select, separability_select

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
K = 3
N_RANDOM = 20
GOAL_MEAN = 0.99
GOAL_MIN = 0.97
#: (scene, labels): None means the binary gt as given (label > 0 positive).
TASKS: tuple[tuple[str, tuple[int | None, ...], bool], ...] = (
    ("pavia_rosis_abu_beach4", (None,), True),
    ("samson", (1, 2, 3), True),
    ("jasper_ridge", (1, 2, 3, 4), True),
    ("muufl_gulfport_tgt", (None,), False),
)


@dataclass
class Task:
    """One labelled task: pixels, binary labels and the binary statistics."""

    name: str
    pixels: np.ndarray
    labels: np.ndarray
    stats: BandStatistics
    in_bar: bool


def tasks(data_dir: Path = DATA_DIR) -> Iterator[Task]:
    """The labelled tasks of the shared scenes (scenes that are absent are skipped)."""
    for scene, labels, in_bar in TASKS:
        path = data_dir / scene / f"{scene}.npz"
        if not path.is_file():
            continue
        with np.load(path, allow_pickle=False) as archive:
            cube, gt = archive["cube"], archive["gt"]
        first = BandStatistics.from_arrays(cube, gt)
        stats = BandStatistics.from_arrays(cube, gt, hist_edges=histogram_edges(first.minimum, first.maximum))
        pixels = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
        for label in labels:
            if label is None:
                yield Task(scene, pixels, (gt.reshape(-1) > 0).astype(int), stats, in_bar)
            else:
                yield Task(
                    f"{scene}:{label}",
                    pixels,
                    (gt.reshape(-1) == label).astype(int),
                    stats.one_vs_rest(label),
                    in_bar,
                )


def cv_auroc(pixels: np.ndarray, labels: np.ndarray, bands: np.ndarray | None = None) -> float:
    """Mean AUROC of a standardised logistic regression; stratified CV, 5 folds (fewer for a tiny class)."""
    x = pixels if bands is None else pixels[:, np.asarray(bands)]
    n_splits = int(min(5, np.bincount(labels).min()))
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(model, x, labels, cv=cv, scoring="roc_auc").mean())


def evaluate(task: Task, n_random: int = N_RANDOM, seed: int = 0) -> dict[str, object]:
    """Selections and AUROCs of one task."""
    start = time.perf_counter()
    separability = separability_select(task.stats, K)
    separability_ms = 1e3 * (time.perf_counter() - start)
    start = time.perf_counter()
    mrmr = mrmr_select(task.stats, K)
    mrmr_ms = 1e3 * (time.perf_counter() - start)
    rng = np.random.default_rng(seed)
    n_bands = task.pixels.shape[1]
    random_draws = [
        cv_auroc(task.pixels, task.labels, rng.choice(n_bands, K, replace=False)) for _ in range(n_random)
    ]
    return {
        "task": task.name,
        "in_bar": task.in_bar,
        "n_pixels": int(task.labels.size),
        "n_positive": int(task.labels.sum()),
        "n_bands": n_bands,
        "cv_folds": int(min(5, np.bincount(task.labels).min())),
        "separability": cv_auroc(task.pixels, task.labels, separability.indices),
        "separability_bands": separability.indices.tolist(),
        "separability_ms": separability_ms,
        "mrmr": cv_auroc(task.pixels, task.labels, mrmr.indices),
        "mrmr_bands": mrmr.indices.tolist(),
        "mrmr_ms": mrmr_ms,
        "all_bands": cv_auroc(task.pixels, task.labels),
        "random_mean": float(np.mean(random_draws)),
        "random_min": float(np.min(random_draws)),
    }


def summarise(rows: list[dict[str, object]]) -> dict[str, object]:
    bar = [r for r in rows if r["in_bar"]]
    summary: dict[str, object] = {"n_tasks": len(bar)}
    for key in ("separability", "mrmr", "all_bands", "random_mean"):
        values = [float(r[key]) for r in bar]
        summary[f"{key}_mean"] = float(np.mean(values)) if values else None
        summary[f"{key}_min"] = float(np.min(values)) if values else None
    summary["passes"] = (
        bool(bar) and summary["separability_mean"] >= GOAL_MEAN and summary["separability_min"] >= GOAL_MIN
    )
    return summary


def markdown(rows: list[dict[str, object]], summary: dict[str, object]) -> str:
    lines = [
        "| task | separability (bands) | mRMR (bands) | all bands | random 3 (mean) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        note = "" if r["in_bar"] else " ¹"
        lines.append(
            f"| {r['task']}{note} | {r['separability']:.4f} {r['separability_bands']} | "
            f"{r['mrmr']:.4f} {r['mrmr_bands']} | {r['all_bands']:.4f} | {r['random_mean']:.4f} |"
        )
    lines.append(
        f"| **mean of the {summary['n_tasks']} bar tasks** | **{summary['separability_mean']:.4f}** "
        f"(min {summary['separability_min']:.4f}) | {summary['mrmr_mean']:.4f} "
        f"(min {summary['mrmr_min']:.4f}) | {summary['all_bands_mean']:.4f} | "
        f"{summary['random_mean_mean']:.4f} |"
    )
    lines.append("")
    lines.append(
        f"AUROC of a standardised logistic regression on {K} bands, stratified 5-fold CV over "
        f"pixels. Bar: separability mean ≥ {GOAL_MEAN}, every task ≥ {GOAL_MIN}: "
        f"{'PASS' if summary['passes'] else 'FAIL'}."
    )
    lines.append("¹ not in the bar: 3 positive pixels, 3-fold CV (one positive per test fold).")
    return "\n".join(lines) + "\n"


def main() -> dict[str, object]:
    rows = [evaluate(task) for task in tasks()]
    if not rows:
        raise SystemExit(f"no shared scenes under {DATA_DIR}")
    summary = summarise(rows)
    result = {
        "benchmark": "quality",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "k": K,
        "n_random": N_RANDOM,
        "goal": {"mean": GOAL_MEAN, "min": GOAL_MIN},
        "summary": summary,
        "tasks": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quality.json").write_text(json.dumps(result, indent=1) + "\n")
    table = markdown(rows, summary)
    (RESULTS / "quality.md").write_text(table)
    print(table)
    return result


if __name__ == "__main__":
    main()

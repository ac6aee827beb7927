"""Summarise ``benchmarks/results/*.json`` as the README's results section.

``python -m benchmarks.summarize`` prints the markdown; ``--write-readme`` replaces the text between the
``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` markers of README.md with it, and the
"Learnable selection" subsection (``benchmarks/results/learnable.json``) between its own
``<!-- learnable:start -->`` / ``<!-- learnable:end -->`` markers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
LEARNABLE_START, LEARNABLE_END = "<!-- learnable:start -->", "<!-- learnable:end -->"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def _speed_rows() -> list[str]:
    rows: list[str] = []
    ingest = _load("ingest")
    if ingest:
        mb = ingest["peak_rss_bytes"] / 1e6
        rows.append(
            f"| ingest a {ingest['source']['gib']:.1f} GiB ENVI cube | peak RSS {mb:.0f} MB, "
            f"{ingest['throughput_mb_per_s']:.0f} MB/s | < 1 GB RSS | {_verdict(mb < 1000)} |"
        )
    rows += _stats_rows()
    rows += _scale_rows()
    training = _load("training")
    if training:
        slowdown = training["slowdown_streaming_vs_memory"]
        rows.append(
            f"| training steps/s streaming from zarr vs in memory ({training['device']}) | "
            f"{slowdown:.2f}× slower ({training['streaming_steps_per_s']:.1f} vs "
            f"{training['in_memory_steps_per_s']:.1f} steps/s) | ≤ 1.5× | {_verdict(slowdown <= 1.5)} |"
        )
        small = training.get("small_cache")
        if small:
            with_worker = small["slowdown_streaming_vs_memory"]
            best = min(with_worker, small["slowdown_streaming_no_workers_vs_memory"])
            rows.append(
                f"| same, campaign 8× larger than the chunk cache (grouped patch sampling) | "
                f"{small['slowdown_streaming_vs_memory']:.2f}× with a worker, "
                f"{small['slowdown_streaming_no_workers_vs_memory']:.2f}× without | ≤ 1.5× | "
                f"{_verdict(best <= 1.5)} (without a worker) |"
            )
    flows = _load("flows")
    if flows:
        export = flows["export"]
        rows.append(
            f"| export composites vs bare zarr read+write | {export['ratio_export_to_bare']:.0%} | ≥ 50 % | "
            f"{_verdict(export['ratio_export_to_bare'] >= 0.5)} |"
        )
        overhead = flows["process_campaign"]
        shape = "×".join(str(v) for v in overhead["acquisition_shape"])
        fraction = overhead["prefect_overhead_fraction"]
        seconds = overhead["seconds"]
        # A negative difference means the overhead is below the run-to-run noise of the whole run.
        measured = (
            f"{fraction:.1%} of the run"
            if fraction >= 0
            else f"below noise (flow {seconds['flow']:.1f} s, plain calls {seconds['plain']:.1f} s)"
        )
        rows.append(
            f"| Prefect overhead, `process_campaign` over {overhead['acquisitions']} acquisitions of "
            f"{shape} | {measured} | < 5 % | {_verdict(fraction < 0.05)} |"
        )
    small = _load("small_run")
    if small:
        seconds = small["seconds"]
        scene = " × ".join(str(v) for v in small["scene"])
        rows.append(
            f"| `bandselect run` of a {scene} scene with running servers (`--servers`), a new store each "
            f"run | {seconds['warm_median']:.1f} s median of {len(small['warm_all'])} "
            f"({min(small['warm_all']):.1f}–{max(small['warm_all']):.1f}); first against fresh servers "
            f"{seconds['first_with_servers']:.1f} s, without servers {seconds['embedded']:.1f} s; the "
            f"imports alone {seconds['imports']:.1f} s | ≤ 15 s | "
            f"{_verdict(seconds['warm_median'] <= 15.0)} |"
        )
    return rows


def _stats_rows() -> list[str]:
    """Rows of ``stats.json`` (benchmarks/bench_stats.py): the one-read job, fit() cold, the torch backend."""
    stats = _load("stats")
    if not stats:
        return []
    rows: list[str] = []
    through = stats["throughput"]
    if "one_read_fraction_of_bare" in through:
        rows.append(
            f"| whole statistics job, one read (moments, Gram, histograms) vs bare dask read-and-sum | "
            f"{through['one_read_fraction_of_bare']:.0%} of {through['bare_gb_per_s']:.2f} GB/s (moments "
            f"alone {through['moments_fraction_of_bare']:.0%}; scanning the ranges first, two reads: "
            f"{through['two_read_fraction_of_bare']:.0%}) | ≥ 50 % | "
            f"{_verdict(through['one_read_fraction_of_bare'] >= 0.5)} |"
        )
    if "ignore_label_one_read_fraction_of_bare" in through:
        rows.append(
            "| the same with `ignore_label` (statistics and the kept pixels' histograms on their own "
            "edges, to the sidecar) vs bare read-and-sum | "
            f"{through['ignore_label_one_read_fraction_of_bare']:.0%} (before: a pass of their own, "
            f"{through['ignore_label_two_read_fraction_of_bare']:.0%}) | ≥ 50 % | "
            f"{_verdict(through['ignore_label_one_read_fraction_of_bare'] >= 0.5)} |"
        )
    memory = stats["in_memory"]
    if "fit_first_call_s" in memory:
        pixels = memory["n_pixels"]
        rows.append(
            f"| `fit()` from its first call, {pixels / 1e6:.2f} M px × {memory['n_bands']} bands, vs the "
            f"in-memory sklearn reference ({memory['reference_s']:.1f} s, same run) | "
            f"{memory['speedup_first_call']:.0f}× cold ({memory['fit_first_call_s'] * 1e3:.0f} ms"
            f"{_cold_range(memory)}), {memory['speedup_warm']:.0f}× warm, "
            f"{memory['speedup_first_call_one_thread']:.0f}× cold on one thread{_import_note(memory)}; "
            f"AUC within {memory['max_abs_auc_diff']:.1e}, "
            f"correlation {memory['max_abs_corr_diff']:.0e} "
            f"| ≥ 100× | {_verdict(memory['speedup_first_call'] >= 100)} |"
        )
    backend = stats.get("torch_backend")
    if backend:
        cpu = backend["cpu"]
        cuda = backend["cuda"]
        gpu = (
            f"CUDA {cuda['in_memory_gb_per_s']:.2f} GB/s in memory, {cuda['store_gb_per_s']:.2f} GB/s over "
            "the store"
            if isinstance(cuda, dict)
            else "no GPU in this run"
        )
        rows.append(
            f"| torch backend of the partials (same histograms: {cpu['histograms_equal']}) | CPU "
            f"{cpu['in_memory_gb_per_s']:.2f} GB/s in memory ({cpu['relative_to_numpy']:.2f}× the CPU "
            f"kernels), {cpu['store_gb_per_s']:.2f} GB/s over the store (CPU kernels "
            f"{backend['numpy_store_gb_per_s']:.2f}); "
            f"{gpu} | same answers | {_verdict(bool(cpu['histograms_equal']))} |"
        )
    return rows


def _cold_range(memory: dict[str, Any]) -> str:
    runs = memory.get("fit_first_call_runs_s")
    if not runs:
        return ""
    low, high = memory["speedup_first_call_range"]
    return f"; median of {len(runs)} fresh processes, {low:.0f}–{high:.0f}×"


def _import_note(memory: dict[str, Any]) -> str:
    """What importing ``bandselect.selectors`` (compiled kernels included) cost before that first call."""
    if "import_selectors_s" not in memory:
        return ""
    return f" (after importing `bandselect.selectors`: {memory['import_selectors_s']:.1f} s)"


def _scale_rows() -> list[str]:
    """Rows of ``scale.json`` (benchmarks/bench_scale.py): cost vs store size, RSS, distributed vs local."""
    scale = _load("scale")
    if not scale:
        return []
    rows: list[str] = []
    cost = scale["cost_against_size"]
    runs = cost["runs"]
    sizes = ", ".join(f"{r['store_bytes'] / 1e9:.1f}" for r in runs)
    walls = ", ".join(f"{r['wall_s']:.0f}" for r in runs)
    fit = cost["linear_fit"]
    if fit:
        linear = f"{fit['seconds_per_gb']:.1f} s/GB, R² {fit['r_squared']:.3f}"
        rows.append(
            f"| statistics job vs store size ({sizes} GB) | {walls} s: {linear} | linear | "
            f"{_verdict(fit['r_squared'] >= 0.98)} |"
        )
    if all("fraction_of_bare" in r for r in runs):
        fractions = ", ".join(f"{r['fraction_of_bare']:.2f}" for r in runs)
        rows.append(
            f"| the job against a bare read-and-sum at those sizes (same process) | {fractions} | "
            f"≥ 0.50, flat | {_verdict(min(r['fraction_of_bare'] for r in runs) >= 0.5)} |"
        )
    low, high = cost["peak_rss_min_bytes"], cost["peak_rss_max_bytes"]
    if high is not None:
        rows.append(
            f"| peak RSS over those sizes | {low / 1e9:.2f}–{high / 1e9:.2f} GB | flat, ≤ 2 GB | "
            f"{_verdict(high <= cost['goal_peak_rss_bytes'] and high - low < 0.25e9)} |"
        )
    dist = scale["distributed"]
    rows.append(
        f"| distributed (2 worker processes) vs local threads, same "
        f"{dist['store_bytes'] / 1e9:.1f} GB store | "
        f"{dist['distributed_gb_per_s']:.2f} vs {dist['local_gb_per_s']:.2f} GB/s "
        f"({dist['distributed_relative_to_local']:.2f}×), same histograms: {dist['same_histograms']} | "
        f"same answers | {_verdict(bool(dist['same_histograms']))} |"
    )
    return rows


def _quality_rows() -> list[str]:
    quality = _load("quality")
    if not quality:
        return []
    issue7 = all("separability_issue7" in task for task in quality["tasks"])
    rows = [
        "| task | separability | "
        + ("issue 7 search | " if issue7 else "")
        + "mRMR (seed) | all bands | random 3 (mean) |",
        "|---|---|" + ("---|" if issue7 else "") + "---|---|---|",
    ]
    for task in quality["tasks"]:
        note = "" if task["in_bar"] else " ¹"
        before = f"{task['separability_issue7']:.4f} | " if issue7 else ""
        rows.append(
            f"| {task['task']}{note} | {task['separability']:.4f} {task['separability_bands']} | {before}"
            f"{task['mrmr']:.4f} {task['mrmr_bands']} | {task['all_bands']:.4f} | "
            f"{task['random_mean']:.4f} |"
        )
    summary = quality["summary"]
    before = (
        f"{summary['separability_issue7_mean']:.4f} (min {summary['separability_issue7_min']:.4f}) | "
        if issue7
        else ""
    )
    rows.append(
        f"| **mean of the {summary['n_tasks']} bar tasks** | **{summary['separability_mean']:.4f}** "
        f"(min {summary['separability_min']:.4f}) | {before}{summary['mrmr_mean']:.4f} "
        f"(min {summary['mrmr_min']:.4f}) | {summary['all_bands_mean']:.4f} | "
        f"{summary['random_mean_mean']:.4f} |"
    )
    verdict = "PASS" if summary["passes"] else "FAIL"
    rows += [
        "",
        f"Bar: separability mean ≥ {quality['goal']['mean']}, every task ≥ {quality['goal']['min']}: "
        f"**{verdict}**. ¹ not in the bar: 3 positive pixels, 3-fold CV."
        + (
            " Issue 7 search: greedy forward selection and swaps, ridge 1e-6 (the selector before issue 13)."
            if issue7
            else ""
        ),
    ]
    return rows + _multiclass_quality_rows(quality.get("multiclass"))


#: The multi-class table's columns: (key in quality.json, heading).
_MULTICLASS_COLUMNS = (
    ("separability", "separability (mean JM)"),
    ("separability_min_bhattacharyya", "min B"),
    ("separability_mean_bhattacharyya", "mean B"),
    ("mrmr", "mRMR"),
    ("orthogonal_projection", "orthogonal projection"),
    ("correlation_clusters", "correlation clusters"),
    ("variance_init", "variance init"),
    ("random", "random k (mean)"),
)


def _multiclass_quality_rows(multiclass: dict[str, Any] | None) -> list[str]:
    """Overall accuracy / kappa of the multi-class selectors per scene and k (issue 13)."""
    if not multiclass or not multiclass.get("scenes"):
        return []

    def cell(entry: dict[str, Any], name: str) -> str:
        if name == "random":
            return f"{entry['overall_accuracy_mean']:.3f} / {entry['kappa_mean']:.3f}"
        return f"{entry['overall_accuracy']:.3f} / {entry['kappa']:.3f}"

    rows = [
        "",
        "Multi-class scenes: overall accuracy / Cohen's kappa of a standardised logistic regression on "
        f"held-out spatial blocks ({multiclass['n_folds']} folds of a {multiclass['n_blocks'][0]} × "
        f"{multiclass['n_blocks'][1]} block grid, bands selected on each fold's train blocks).",
        "",
        "| scene | k | " + " | ".join(h for _, h in _MULTICLASS_COLUMNS) + " | all bands |",
        "|---|---|" + "---|" * (len(_MULTICLASS_COLUMNS) + 1),
    ]
    for scene in multiclass["scenes"]:
        for k in multiclass["ks"]:
            entry = scene["by_k"][str(k)]
            cells = [cell(entry[name], name) for name, _ in _MULTICLASS_COLUMNS]
            rows.append(
                f"| {scene['scene']} ({len(scene['classes'])} classes) | {k} | "
                + " | ".join(cells)
                + f" | {cell(scene['all_bands'], 'all')} |"
            )
    summary = multiclass["summary"]
    means = [
        f"{summary[f'{name}_overall_accuracy']:.3f} / {summary[f'{name}_kappa']:.3f}"
        for name, _ in _MULTICLASS_COLUMNS
    ]
    rows.append(
        "| **mean** | | "
        + " | ".join(means)
        + f" | {summary['all_bands_overall_accuracy']:.3f} / {summary['all_bands_kappa']:.3f} |"
    )
    return rows


def _learnable_rows() -> list[str]:
    """Test RX AUROC of the learnable selectors beside the statistical ones (bench_learnable.py)."""
    learnable = _load("learnable")
    if not learnable:
        return []
    # Column order: the default first; only the variants the results hold. The other variants in the
    # JSON (straight-through, RX ridge 0.03, the softmax relaxation) are discussed in docs/learnable.md.
    labels = {
        "soft_subset_uniform_search": "soft, relaxed top-k, seed's settings, uniform start, searched "
        "(default)",
        "soft_subset_uniform_refined": "soft, …, refined within ±3 bands",
        "soft_subset_uniform": "soft, …, trained only",
        "soft_subset_seed_search": "soft, …, variance start, searched",
        "soft_subset_seed": "soft, …, variance start, trained only",
        "concrete_seed_search": "Concrete, seed's settings, searched",
        "concrete_seed": "Concrete, trained only",
    }
    names = [v for v in labels if v in learnable["variants"]]
    rows = [
        "| task | " + " | ".join(labels[n] for n in names) + " | variance | separability | mRMR | random 3 "
        "| all bands | goal |",
        "|---" * (len(names) + 7) + "|",
    ]
    for task in learnable["tasks"]:
        cells = []
        for name in names:
            variant = task["variants"].get(name)
            if variant is None:
                cells.append("")
                continue
            bands = " / ".join(",".join(str(b) for b in seed["bands"]) for seed in variant["seeds"])
            agree = "" if variant["seeds_agree"] is None else (" ✓" if variant["seeds_agree"] else " ✗")
            cells.append(f"{variant['test_auroc_mean']:.4f} ({bands}){agree}")
        stats = task["statistical"]
        best = task["best_statistical"]
        statistical = {
            name: (
                f"**{stats[name]['test_auroc']:.4f}**" if name == best else f"{stats[name]['test_auroc']:.4f}"
            )
            for name in ("variance", "separability", "mrmr")
        }

        goal = task.get("goal")
        if not task["in_goal"]:
            verdict = "not in the goal ¹"
        elif goal is None:
            verdict = ""
        else:
            gap = goal["gap_to_best_statistical"]
            seeds = "✓" if goal["seeds_agree"] else "✗"
            verdict = f"AUROC {'✓' if goal['matches'] else '✗'} ({gap:+.4f}), seeds {seeds}"
        rows.append(
            f"| {task['task']} | " + " | ".join(cells) + f" | {statistical['variance']} | "
            f"{statistical['separability']} | {statistical['mrmr']} | {stats['random']['test_auroc']:.4f} | "
            f"{stats['all_bands']['test_auroc']:.4f} | {verdict} |"
        )
    summary = learnable["summary"]
    both = sum(
        bool(t["goal"]["matches"] and t["goal"]["seeds_agree"])
        for t in learnable["tasks"]
        if t["in_goal"] and "goal" in t
    )
    times = [
        v["s_per_epoch_mean"] for t in learnable["tasks"] for n, v in t["variants"].items() if n == names[0]
    ]
    rows += [
        "",
        f"Goal (the default ≥ best statistical − 0.002 on mean test AUROC, and its 3 seeds within ±1 band, "
        f"✓/✗): both met on {both} of {summary['goal_tasks']} tasks "
        f"(AUROC on {summary['matches']}, seeds on {summary['seeds_agree']}). Bands of seeds 0 / 1 / 2 in "
        f"brackets. CPU time per epoch of the default (its search after training included): "
        f"{min(times):.1f}–{max(times):.1f} s "
        f"({learnable['device']}). ¹ 3 target pixels, one in the test rows.",
    ]
    return rows


def summary_markdown() -> str:
    """The README's results section, from the JSON files."""
    lines = [
        "Measured on this project's 2-core CI machine, each goal as a ratio within one run "
        "(`make bench` reruns everything and rewrites this section).",
        "",
        "| benchmark | result | goal | |",
        "|---|---|---|---|",
        *_speed_rows(),
        "",
        "Selection quality on the shared real scenes (`benchmarks/bench_quality.py`): AUROC of a "
        "standardised logistic regression on the 3 selected bands, stratified 5-fold CV over pixels; "
        "multi-class scenes one class against the rest (binary tasks), then as classifications.",
        "",
        *_quality_rows(),
    ]
    return "\n".join(lines) + "\n"


def learnable_markdown() -> str:
    """The README's "Learnable selection" subsection (its own markers), from ``learnable.json``."""
    learnable = _learnable_rows()
    if not learnable:
        return ""
    lines = [
        "### Learnable selection",
        "",
        "`benchmarks/bench_learnable.py` (protocol, decisions and caveats in "
        "[docs/learnable.md](docs/learnable.md)): test RX AUROC of the hard top-3 after training, rows "
        "split in three (train / validation picks the epoch and guides the search after training / "
        "test reported), RX background from the training rows' negatives; statistical selectors "
        "fitted on train + validation rows; mean of the "
        "seeds; best statistical in bold.",
        "",
        *learnable,
    ]
    return "\n".join(lines) + "\n"


def write_readme(markdown: str, learnable: str = "") -> None:
    """Replace the marked sections of README.md with ``markdown`` (and ``learnable``, when given)."""
    text = README.read_text()
    for start, end, body in ((START, END, markdown), (LEARNABLE_START, LEARNABLE_END, learnable)):
        if not body:
            continue
        if start not in text or end not in text:
            raise SystemExit(f"README.md has no {start} ... {end} section to replace")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{body}{end}{tail}"
    README.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write-readme", action="store_true", help="rewrite README.md's section")
    args = parser.parse_args(argv)
    markdown, learnable = summary_markdown(), learnable_markdown()
    if args.write_readme:
        write_readme(markdown, learnable)
    print(markdown)
    print(learnable)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""compare_task.fn, render_comparison_task.fn, log_comparison_task.fn: a comparison without a flow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from bandselect import tracking
from bandselect.evaluation.compare import SplitSettings, StabilitySettings
from bandselect.synthetic import make_scene
from bandselect.tasks import compare_task, log_comparison_task, render_comparison_task
from bandselect.tracking import tracking_uri_default

SELECTORS = {
    "full": {"type": "SupervisedFullSpectrumBandSelector", "config": {"criterion": "separability"}},
    "rgb": {"type": "BaselineFalseRGBSelector", "config": {}},
}


def test_compare_render_and_log(tmp_path: Path) -> None:
    scene = make_scene(64, 64, n_bands=20, seed=5, anomaly_fraction=0.05)
    path = tmp_path / "scene.npz"
    np.savez(path, cube=scene.cube, wavelengths_nm=scene.wavelengths_nm, gt=scene.mask.astype(np.uint8))
    leaderboard = compare_task.fn(
        {"path": str(path)},  # load_labelled_scene's arguments (the flow's scene:)
        SELECTORS,
        split=SplitSettings(seed=1),
        stability=StabilitySettings(n_bootstrap=0),
        n_random_draws=3,
        folds=3,
    )
    assert {row.name for row in leaderboard.selector_rows} == {"full", "rgb"}
    assert leaderboard.row("full").selection is not None and leaderboard.row("full").selection.k == 3
    figures = render_comparison_task.fn(leaderboard, {"path": str(path)}, str(tmp_path / "out"))
    assert figures.leaderboard_json.is_file() and set(figures.selector_previews) == {"full", "rgb"}
    uri = tracking_uri_default(tmp_path / "project")
    with tracking.start_run("compare", tracking_uri=uri) as parent:
        children = log_comparison_task.fn(leaderboard, figures, parent.info.run_id, {"k": 3})
    client = MlflowClient(tracking_uri=uri)
    baselines = {row.name for row in leaderboard.rows if row.kind != "selector"}
    assert set(children) == {"full", "rgb", *baselines} and len(baselines) == 2
    child = client.get_run(children["full"])
    all_bands = client.get_run(children[next(b for b in baselines if b.startswith("all bands"))])
    assert all_bands.data.tags["bandselect.role"] == "baseline"
    assert all_bands.data.metrics["rx_auroc"] == leaderboard.row(all_bands.info.run_name).scores["rx_auroc"]
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.metrics["rx_auroc"] == leaderboard.row("full").scores["rx_auroc"]

"""The compare_selectors flow on a multi-class scene: accuracy and kappa per selector, k = 3 and 6.

Real Prefect (ephemeral API, once per session) and a real sqlite MLflow store under ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from multiclass_scenes import planted_pair_scene

from bandselect.errors import ConfigError
from bandselect.flows.compare_selectors import CompareSelectorsConfig, compare_selectors


def _scene(tmp_path: Path) -> Path:
    scene = planted_pair_scene(size=50)
    path = tmp_path / "classes.npz"
    np.savez(path, cube=scene.cube, wavelengths_nm=scene.wavelengths_nm, gt=scene.labels.astype(np.int32))
    return path


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_multiclass_comparison_flow(mlflow_store: str, tmp_path: Path) -> None:
    selectors = {
        name: spec
        for name, spec in CompareSelectorsConfig.model_validate(
            {"scene": {"path": "x.npz", "multiclass": True}, "multiclass_k": [3, 6]}
        )
        .resolved_selectors()
        .items()
        if name.endswith("_k6") or name == "baseline_rgb"
    }
    result = compare_selectors(
        {
            "scene": {"path": str(_scene(tmp_path)), "multiclass": True, "ignore_label": 0},
            "selectors": selectors,
            "stability": {"n_bootstrap": 0},
            "n_random_draws": 3,
            "tracking_uri": mlflow_store,
            "output_dir": str(tmp_path / "out"),
        }
    )
    rows = {row["name"]: row for row in result.records}
    assert set(rows) == {*selectors, "all bands (24)", "random 6 bands (3 draws)", "random 3 bands (3 draws)"}
    separability = rows["supervised_separability_k6"]
    assert sorted(separability["bands"]) == [2, 5, 9, 13, 17, 21]
    assert separability["overall_accuracy"] > 0.97 and separability["kappa"] > 0.96
    assert rows["random 6 bands (3 draws)"]["kappa_std"] is not None
    assert "logistic_auroc" not in separability
    assert (result.output_dir / "leaderboard.png").is_file() and (
        result.output_dir / "leaderboard_kappa.png"
    ).is_file()
    client = MlflowClient(tracking_uri=mlflow_store)
    assert client.get_run(result.parent_run_id).data.tags["bandselect.campaign"] == "classes-multiclass"
    child = client.get_run(result.child_run_ids["supervised_separability_k6"])
    assert child.data.metrics["kappa"] == pytest.approx(separability["kappa"])


def test_multiclass_config_rules() -> None:
    config = CompareSelectorsConfig.model_validate({"scene": {"path": "s.npz", "multiclass": True}})
    assert config.measures == ("overall_accuracy", "kappa")
    binary = CompareSelectorsConfig.model_validate(
        {"scene": {"path": "s.npz", "label": 3, "ignore_label": 0}}
    )
    assert binary.scene.ignore_label == 0 and not binary.scene.multiclass  # binary scenes take one too
    defaults = config.resolved_selectors()
    assert {"supervised_separability_k3", "supervised_mrmr_k5", "orthogonal_projection_k10"} <= set(defaults)
    assert defaults["supervised_separability_k10"]["config"]["multiclass"] is True
    for bad in (
        {"scene": {"path": "s.npz", "multiclass": True, "label": 2}},
        {"scene": {"path": "s.npz", "label": 2, "ignore_label": 2}},  # the class to detect, ignored
        {"scene": {"path": "s.npz", "multiclass": True}, "measures": ["rx_auroc"]},
        {"scene": {"path": "s.npz"}, "measures": ["kappa"]},
        {"scene": {"path": "s.npz", "multiclass": True}, "classifier": "svm"},
        {"scene": {"path": "s.npz", "multiclass": True}, "multiclass_k": [2]},
    ):
        with pytest.raises(ConfigError):
            CompareSelectorsConfig.model_validate(bad) if False else CompareSelectorsConfig.from_yaml(
                _yaml(bad)
            )


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data)

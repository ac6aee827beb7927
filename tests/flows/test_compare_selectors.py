"""The compare_selectors flow on a real scene (Pavia) and on a synthetic noise scene.

Real Prefect (ephemeral API, once per session) and a real sqlite MLflow store under ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpl_image
from mlflow.tracking import MlflowClient

from bandselect import tracking
from bandselect.cli import main
from bandselect.errors import ConfigError
from bandselect.evaluation.compare import SelectorSpec, compare_selections
from bandselect.flows.compare_selectors import CompareSelectorsConfig, compare_selectors
from bandselect.tracking.comparison import (
    TAG_BEST_SELECTOR,
    TAG_NOT_APPLICABLE,
    TAG_ROLE,
    TAG_STATUS,
    TAG_UNSTABLE,
    TAG_UNSTABLE_SELECTORS,
)

PAVIA = Path(__file__).resolve().parents[3] / "shared" / "data" / "pavia_rosis_abu_beach4"
PAVIA_NPZ = PAVIA / "pavia_rosis_abu_beach4.npz"

LIGHT_SELECTORS = {
    "baseline_rgb": {"type": "BaselineFalseRGBSelector"},
    "cir": {"type": "CIRFalseColorSelector"},
    "soft_variance": {
        "type": "SoftChannelSelector",
        "config": {"n_select": 3, "init_method": "variance"},
        "train": False,  # its variance initialisation (the learnable selectors' test trains them)
    },
    "full_mrmr": {"type": "SupervisedFullSpectrumBandSelector", "config": {"criterion": "mrmr"}},
    "full_separability": {
        "type": "SupervisedFullSpectrumBandSelector",
        "config": {"criterion": "separability"},
    },
}


def _children(client: MlflowClient, parent_run_id: str) -> list:
    parent = client.get_run(parent_run_id)
    return client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
    )


def _assert_png_not_blank(path: Path) -> None:
    pixels = mpl_image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50, path
    assert float(pixels[..., :3].std()) > 0.02, f"{path} looks blank"


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_pavia_comparison_runs_leaderboard_pngs_and_report(
    mlflow_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not PAVIA_NPZ.is_file():
        pytest.skip(f"real scene {PAVIA_NPZ} is absent")
    config = CompareSelectorsConfig.model_validate(
        {
            "scene": {"path": str(PAVIA_NPZ)},
            "campaign": "pavia-test",
            "selectors": LIGHT_SELECTORS,
            "stability": {"n_bootstrap": 4},
            "n_random_draws": 8,
            "tracking_uri": mlflow_store,
            "output_dir": str(tmp_path / "out"),
        }
    )
    result = compare_selectors(config)

    client = MlflowClient(tracking_uri=mlflow_store)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[tracking.TAG_CAMPAIGN] == "pavia-test"
    assert parent.data.tags[tracking.TAG_FLOW_RUN_ID]
    everything = _children(client, result.parent_run_id)
    children = [child for child in everything if child.data.tags[TAG_ROLE] == "selector"]
    baselines = {
        child.info.run_name: child for child in everything if child.data.tags[TAG_ROLE] == "baseline"
    }
    assert sorted(child.info.run_name for child in children) == sorted(LIGHT_SELECTORS)
    assert sorted(baselines) == ["all bands (102)", "random 3 bands (8 draws)"]
    assert {child.info.run_id for child in everything} == set(result.child_run_ids.values())
    # One metric name for selectors and baselines: MLflow itself ranks them (its compare view charts them).
    ranked = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
        order_by=["metrics.logistic_auroc DESC"],
    )
    ranked_names = [run.info.run_name for run in ranked]
    assert set(ranked_names) == set(LIGHT_SELECTORS) | set(baselines)
    scores = [run.data.metrics["logistic_auroc"] for run in ranked]
    assert scores == sorted(scores, reverse=True)
    assert ranked_names.index("full_separability") < ranked_names.index("random 3 bands (8 draws)")
    assert baselines["random 3 bands (8 draws)"].data.metrics["logistic_auroc_std"] > 0
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags[tracking.TAG_FLOW_RUN_ID] == parent.data.tags[tracking.TAG_FLOW_RUN_ID]
        assert 0.5 < child.data.metrics["rx_auroc"] <= 1.0
        assert 0.5 < child.data.metrics["logistic_auroc"] <= 1.0
        assert child.data.params["selector.type"] == LIGHT_SELECTORS[child.info.run_name]["type"]
        names = {item.path for item in client.list_artifacts(child.info.run_id)}
        assert {"selection.json", "plots"} <= names

    # Leaderboard as logged: every selector and both baselines, sensible numbers.
    downloaded = Path(client.download_artifacts(result.parent_run_id, "", str(tmp_path / "parent")))
    board = json.loads((downloaded / "leaderboard.json").read_text())
    rows = {row["name"]: row for row in board["rows"]}
    assert set(LIGHT_SELECTORS) <= set(rows)
    assert rows["all bands (102)"]["kind"] == "all_bands"
    random_rows = [row for row in board["rows"] if row["kind"] == "random"]
    assert len(random_rows) == 1 and random_rows[0]["logistic_auroc_std"] > 0
    assert all(row["status"] == "ok" for row in board["rows"])
    separability = rows["full_separability"]["logistic_auroc"]
    assert separability >= random_rows[0]["logistic_auroc"]
    assert separability >= 0.99
    assert rows["baseline_rgb"]["unstable"] is False  # fixed wavelengths never move
    assert (downloaded / "leaderboard.csv").read_text().count("\n") == len(board["rows"]) + 1
    best = next(row for row in board["rows"] if row["kind"] == "selector")
    assert parent.data.tags[TAG_BEST_SELECTOR] == best["name"]
    assert parent.data.metrics["best/logistic_auroc"] == pytest.approx(best["logistic_auroc"])
    assert not [name for name in parent.data.metrics if not name.startswith("best/")]
    # The parent's description in the MLflow UI: the winner first, then one table row per leaderboard row.
    description = parent.data.tags["mlflow.note.content"].splitlines()
    assert description[0].startswith(f"**Best** {best['name']}: ")
    assert f"logistic_auroc {best['logistic_auroc']:.4f}" in description[0] and description[0].endswith(" nm")
    table = [line for line in description if line.startswith("| ")]
    assert len(table) == len(board["rows"]) + 1 and "| rank | name |" in table[0]

    pngs = sorted(downloaded.rglob("*.png"))
    names = {path.relative_to(downloaded).as_posix() for path in pngs}
    assert {
        "plots/leaderboard.png",
        "plots/rgb_previews.png",
        "plots/stability/full_separability.png",
    } <= names
    for path in pngs:
        _assert_png_not_blank(path)

    from prefect.artifacts import Artifact

    artifact = Artifact.get(result.table_artifact_key)
    assert artifact is not None and "full_separability" in str(artifact.data)

    # `bandselect report` writes one page with every image of the parent and children, and the rows.
    out = tmp_path / "report"
    assert main(["report", result.parent_run_id, "--tracking-uri", mlflow_store, "--out", str(out)]) == 0
    page_path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    page = page_path.read_text()
    child_pngs = [p for c in children for p in (out / "artifacts" / c.info.run_id).rglob("*.png")]
    assert len(child_pngs) == 2 * len(children)  # preview + stability plot per selector
    distinct = {hashlib.sha256(p.read_bytes()).hexdigest() for p in [*pngs, *child_pngs]}
    assert page.count("data:image/png;base64,") == len(distinct) == len(pngs) + len(children)
    for name in [*LIGHT_SELECTORS, "all bands (102)", random_rows[0]["name"]]:
        assert f"<td>{name}</td>" in page


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_noise_scene_flags_unstable_and_not_applicable(mlflow_store: str, tmp_path: Path) -> None:
    """Pure noise: a supervised pick is luck (unstable); a 400–700 nm sensor has no 860 nm band (CIR)."""
    rng = np.random.default_rng(3)
    cube = rng.normal(1.0, 0.1, size=(48, 48, 40)).astype(np.float32)
    labels = (rng.random((48, 48)) < 0.08).astype(np.int32)
    scene = tmp_path / "noise.npz"
    np.savez(scene, cube=cube, wavelengths_nm=np.linspace(400.0, 700.0, 40), gt=labels)
    selectors = {
        "noise_separability": {
            "type": "SupervisedFullSpectrumBandSelector",
            "config": {"criterion": "separability"},
        },
        "baseline_rgb": {"type": "BaselineFalseRGBSelector"},
        "cir": {"type": "CIRFalseColorSelector"},
    }
    result = compare_selectors(
        {
            "scene": {"path": str(scene)},
            "selectors": selectors,
            "stability": {"n_bootstrap": 12},
            "n_random_draws": 4,
            "measures": ["logistic_auroc", "rx_auroc"],
            "tracking_uri": mlflow_store,
            "output_dir": str(tmp_path / "out"),
        }
    )
    rows = {row["name"]: row for row in result.records}
    assert rows["noise_separability"]["unstable"] is True
    assert rows["baseline_rgb"]["unstable"] is False
    assert rows["cir"]["status"].startswith("not applicable: ")
    assert "860" in rows["cir"]["status"] and "400" in rows["cir"]["status"]
    assert rows["cir"]["logistic_auroc"] is None
    assert result.records[-1]["name"] == "cir"  # listed, after the scored rows
    # Mapped: one compare task per selector, one for the baselines, and a progress artifact.
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
    )

    flow_run_id = (
        MlflowClient(tracking_uri=mlflow_store)
        .get_run(result.parent_run_id)
        .data.tags[tracking.TAG_FLOW_RUN_ID]
    )
    with get_client(sync_client=True) as prefect_client:
        task_runs = prefect_client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        artifacts = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    compare_runs = sorted(run.name for run in task_runs if run.name.startswith("compare-"))
    assert compare_runs == [
        "compare-baseline_rgb",
        "compare-baselines",
        "compare-cir",
        "compare-noise_separability",
    ]
    progress = [a for a in artifacts if a.type == "progress"]
    assert len(progress) == 1 and float(progress[0].data) == 100.0
    assert "selectors compared 3/3" in progress[0].description

    client = MlflowClient(tracking_uri=mlflow_store)
    parent = client.get_run(result.parent_run_id)
    assert json.loads(parent.data.tags[TAG_UNSTABLE_SELECTORS]) == ["noise_separability"]
    assert json.loads(parent.data.tags[TAG_NOT_APPLICABLE]) == ["cir"]
    children = {child.info.run_name: child for child in _children(client, result.parent_run_id)}
    roles = {name: child.data.tags[TAG_ROLE] for name, child in children.items()}
    assert {name for name, role in roles.items() if role == "selector"} == set(selectors)
    assert sorted(name for name, role in roles.items() if role == "baseline") == [
        "all bands (40)",
        "random 3 bands (4 draws)",
    ]
    assert children["noise_separability"].data.tags[TAG_UNSTABLE] == "true"
    assert children["noise_separability"].data.metrics["stability/unstable"] == 1.0
    assert children["cir"].data.tags[TAG_STATUS].startswith("not applicable: ")
    assert "rx_auroc" not in children["cir"].data.metrics
    stability_png = result.output_dir / "stability" / "noise_separability.png"
    _assert_png_not_blank(stability_png)


def test_config_rejects_utilities_bad_names_and_unknown_keys(tmp_path: Path) -> None:
    base = {"scene": {"path": "scene.npz"}}
    with pytest.raises(ConfigError, match="TopKIndices"):
        CompareSelectorsConfig.from_yaml(
            "scene: {path: scene.npz}\nselectors:\n  top: {type: TopKIndices, config: {k: 3}}\n"
        )
    with pytest.raises(ConfigError, match="must match"):
        CompareSelectorsConfig.from_yaml(
            "scene: {path: s.npz}\nselectors:\n  '../x': {type: CIRFalseColorSelector}\n"
        )
    with pytest.raises(ConfigError, match="splitt: Extra inputs"):
        CompareSelectorsConfig.from_yaml("scene: {path: s.npz}\nsplitt: {seed: 1}\n")
    config = CompareSelectorsConfig.model_validate(base)
    assert config.campaign == "scene"
    defaults = config.resolved_selectors()
    assert "TopKIndices" not in {spec["type"] for spec in defaults.values()}
    assert defaults["soft_variance_topk"]["config"] == {"n_select": 3, "init_method": "variance"}
    assert {defaults[f"supervised_full_{c}"]["config"]["criterion"] for c in ("mrmr", "separability")} == {
        "mrmr",
        "separability",
    }
    shipped = CompareSelectorsConfig.from_yaml(
        Path(__file__).resolve().parents[2] / "configs" / "compare_selectors.yaml"
    )
    assert shipped.scene.path.suffix == ".npz"
    # Its relative paths are the file's, as in every flow config: it works from any folder.
    assert shipped.scene.path.is_absolute() and shipped.output_dir.is_absolute()
    shared = Path(__file__).resolve().parents[3] / "shared" / "data"
    if shared.is_dir():
        assert shipped.scene.path.is_file()
    # The shipped config trains the learnable selectors from the starts the defaults use.
    for name in ("soft_trained", "concrete_trained"):
        assert shipped.resolved_selectors()[name]["config"] == defaults[name]["config"], name


def test_library_refuses_untrained_uniform_soft_selector() -> None:
    rng = np.random.default_rng(0)
    cube = rng.random((16, 16, 12)).astype(np.float32)
    mask = np.zeros((16, 16), dtype=bool)
    mask[::3, ::3] = True
    with pytest.raises(ConfigError, match="init_method='variance'"):
        compare_selections(
            cube,
            mask,
            np.linspace(400, 700, 12),
            {"soft": SelectorSpec("SoftChannelSelector", {"n_select": 3}, train=False)},
            folds=2,
        )


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_learnable_selectors_are_trained_with_their_curves_in_child_runs(
    mlflow_store: str, tmp_path: Path
) -> None:
    """The flow trains the soft and Concrete selectors on the train blocks; each child run holds its
    training curves (one step per epoch) and the kept epoch; the leaderboard ranks them with the rest."""
    rng = np.random.default_rng(5)
    cube = rng.normal(1.0, 0.1, size=(48, 48, 16)).astype(np.float32)
    labels = np.zeros((48, 48), np.int32)
    labels[rng.random((48, 48)) < 0.06] = 1
    cube[labels == 1, 5] -= 0.4  # the planted band
    scene = tmp_path / "planted.npz"
    np.savez(scene, cube=cube, wavelengths_nm=np.linspace(450.0, 900.0, 16), gt=labels)
    fast = {"epochs": 5, "batches_per_epoch": 2}
    selectors = {
        "soft_trained": {
            "type": "SoftChannelSelector",
            "config": {"n_select": 3, "init_method": "variance", "seed": 0},
            "training": fast,
        },
        "concrete_trained": {"type": "ConcreteBandSelector", "config": {"seed": 0}, "training": fast},
        "separability": {
            "type": "SupervisedFullSpectrumBandSelector",
            "config": {"criterion": "separability"},
        },
    }
    result = compare_selectors(
        {
            "scene": {"path": str(scene)},
            "selectors": selectors,
            "stability": {"n_bootstrap": 2},
            "n_random_draws": 3,
            "measures": ["rx_auroc"],
            "tracking_uri": mlflow_store,
            "output_dir": str(tmp_path / "out"),
        }
    )
    rows = {row["name"]: row for row in result.records}
    assert rows["soft_trained"]["trained"] and rows["soft_trained"]["epochs"] == 5
    assert rows["concrete_trained"]["trained"] and rows["separability"]["trained"] is False
    assert 5 in rows["separability"]["bands"] and rows["separability"]["stability_index"] is not None
    assert all(rows[name]["rx_auroc"] is not None for name in selectors)
    client = MlflowClient(tracking_uri=mlflow_store)
    children = {child.info.run_name: child for child in _children(client, result.parent_run_id)}
    for name in ("soft_trained", "concrete_trained"):
        run_id = children[name].info.run_id
        for curve in ("loss", "val_loss", "temperature", "selection.rx_auroc"):
            history = client.get_metric_history(run_id, curve)
            assert sorted(m.step for m in history) == [0, 1, 2, 3, 4], (name, curve)
        temperatures = sorted(client.get_metric_history(run_id, "temperature"), key=lambda m: m.step)
        assert [round(m.value, 4) for m in temperatures] == [round(5.0 * 0.9**e, 4) for e in range(5)]
        assert "best_epoch" in children[name].data.metrics and "rx_auroc" in children[name].data.metrics
    assert "loss" not in children["separability"].data.metrics


def test_config_names_unknown_training_fields_of_a_learnable_selector() -> None:
    with pytest.raises(ConfigError, match=r"unknown training fields \['epoch'\]"):
        CompareSelectorsConfig.from_yaml(
            "scene: {path: s.npz}\nselectors:\n  soft: {type: SoftChannelSelector, config: {n_select: 3}, "
            "training: {epoch: 3}}\n"
        )
    config = CompareSelectorsConfig.model_validate({"scene": {"path": "s.npz"}})
    selectors = config.resolved_selectors()
    assert (
        selectors["soft_trained"]["train"] and selectors["concrete_trained"]["type"] == "ConcreteBandSelector"
    )
    assert (
        selectors["soft_variance_topk"]["train"] is False and selectors["soft_trained"]["bootstrap"] is None
    )


def test_relative_paths_of_a_config_file_are_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "configs").mkdir()
    config = tmp_path / "configs" / "compare.yaml"
    config.write_text("scene: {path: ../scenes/beach.npz}\noutput_dir: results\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # bandselect run may be started from any folder
    loaded = CompareSelectorsConfig.from_yaml(config)
    assert loaded.scene.path == tmp_path / "scenes" / "beach.npz"
    assert loaded.output_dir == tmp_path / "configs" / "results"
    # YAML text has no file: its paths stay relative to the working folder.
    text = CompareSelectorsConfig.from_yaml("scene: {path: beach.npz}\noutput_dir: results\n")
    assert text.scene.path == Path("beach.npz") and text.output_dir == Path("results")
    # A file without scene.path says the field is missing (not "None is not a valid path").
    missing = tmp_path / "configs" / "missing.yaml"
    missing.write_text("scene: {label: 2}\n")
    with pytest.raises(ConfigError, match=r"scene\.path: Field required"):
        CompareSelectorsConfig.from_yaml(missing)


def test_the_scene_config_is_exactly_what_loads_the_scene() -> None:
    # The flow hands scene.model_dump() to load_labelled_scene in every task: one set of names.
    import inspect

    from bandselect.evaluation.scene import load_labelled_scene
    from bandselect.flows.compare_selectors import SceneConfig

    assert set(SceneConfig.model_fields) == set(inspect.signature(load_labelled_scene).parameters)

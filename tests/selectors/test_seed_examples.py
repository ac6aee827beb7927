"""The seed's examples (spec/seed_selector_nodes.txt), run on real data.

Every Python snippet of the seed appears below in order, as written, with only the import lines changed
(``cuvis_ai.node.*`` → ``bandselect.selectors``, ``cuvis_ai_core.training`` → ``bandselect.training``).
Lines marked ``# filled:`` fill the seed's "..." parts (the pipeline, the datamodule, ``train_epoch``,
``max_epochs``); assertions after a snippet check its documented result. The seed's YAML files
(``spec/seed_yaml``) are loaded as written, from the files: ``top_k_indices.yaml`` and
``supervised_cir.yaml`` need nothing else; ``soft_channel_selector.yaml`` and ``baseline_false_rgb.yaml``
connect to nodes the seed never defines (``rx``, ``adaclip``), which the loader takes from ``nodes=``: an
``RXDetector`` and a small sink node with an ``rgb_input`` port standing in for AdaCLIP.

Data: the Samson scene (401–889 nm, 156 bands) from ../shared/data, reduced to 61 bands evenly spread
over the sensor range to match the seed's 61-channel examples, split into 4 frames of 47 × 47 pixels.
Labels: tree (class 2) = positive.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from selector_fixtures import load_real, projection_weights_reference

from bandselect.errors import PipelineError
from bandselect.pipeline import Node, Pipeline, PortSpec, SuppliedNode
from bandselect.pipeline.config import node_definition
from bandselect.training import ArrayDataModule

SEED_YAML = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "seed_yaml"
N_BANDS = 61


@pytest.fixture
def seed_yaml() -> Path:
    """The folder of the seed's YAML files, or skip when ../shared is not mounted."""
    if not SEED_YAML.is_dir():
        pytest.skip(f"the seed's YAML files are absent ({SEED_YAML}): ../shared is not mounted here")
    return SEED_YAML


@pytest.fixture(scope="module")
def samson() -> dict[str, np.ndarray]:
    arrays = load_real("samson")
    keep = np.round(np.linspace(0, arrays["cube"].shape[-1] - 1, N_BANDS)).astype(int)
    cube = arrays["cube"][:94, :94][..., keep].astype(np.float32)
    gt = arrays["gt"][:94, :94]
    frames = cube.reshape(2, 47, 2, 47, N_BANDS).transpose(0, 2, 1, 3, 4).reshape(4, 47, 47, N_BANDS)
    labels = gt.reshape(2, 47, 2, 47).transpose(0, 2, 1, 3).reshape(4, 47, 47)
    return {"cube": frames, "mask": labels == 2, "wavelengths": arrays["wavelengths_nm"][keep]}


@pytest.fixture
def datamodule(samson: dict[str, np.ndarray]) -> ArrayDataModule:
    return ArrayDataModule(samson["cube"], samson["mask"], wavelengths=samson["wavelengths"], batch_size=1)


@pytest.fixture
def cube(samson: dict[str, np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(samson["cube"][:2])


@pytest.fixture
def wavelengths(samson: dict[str, np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(samson["wavelengths"].astype(np.float32))


def _soft_pipeline(selector: Node) -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_node(selector, "selector")
    pipeline.connect(("data.cube", selector.data))
    return pipeline


def _epoch_trainer(selector: Any, datamodule: ArrayDataModule) -> Callable[..., None]:
    """A real training epoch: reward the selected signal of tree pixels over the rest (SGD on logits)."""
    optimizer = torch.optim.Adam(selector.parameters(), lr=0.05) if selector.is_trainable else None

    def train_epoch(*_: Any) -> None:
        if optimizer is None:
            return
        selector.train()
        for batch in datamodule.train_dataloader():
            selected = selector.forward(data=batch["cube"])["selected"]
            positive = batch["mask"][..., 0]
            contrast = selected[positive].mean() - selected[~positive].mean() if positive.any() else None
            loss = -(contrast if contrast is not None else selected.mean())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return train_epoch


# ------------------------------------------------------------------------------------ SoftChannelSelector
def test_scenario_1_two_phase_training(datamodule: ArrayDataModule) -> None:
    from bandselect.selectors import SoftChannelSelector

    # Phase 1: Statistical initialization
    selector = SoftChannelSelector(
        n_select=3,  # Reduce 61 channels to 3
        input_channels=61,
        init_method="variance",  # Importance-based initialization
        temperature_init=5.0,
    )
    pipeline = _soft_pipeline(selector)  # filled: the seed's `pipeline`
    max_epochs = 3  # filled

    # Initialize from training data
    from bandselect.training import StatisticalTrainer

    trainer = StatisticalTrainer(pipeline=pipeline, datamodule=datamodule)
    trainer.fit()  # Automatically initializes selector
    assert selector.is_initialized

    # Phase 2: Unfreeze and train
    selector.unfreeze()  # Convert logits buffer → nn.Parameter
    train_epoch = _epoch_trainer(selector, datamodule)  # filled: "Train with gradient descent..."
    before = selector.channel_logits.detach().clone()

    # During training, update temperature per epoch
    for epoch in range(max_epochs):
        selector.update_temperature(epoch=epoch)
        # Train with gradient descent...
        train_epoch()  # filled

    assert selector.temperature == pytest.approx(5.0 * 0.9**2)
    assert not torch.equal(selector.channel_logits.detach(), before)


def test_scenario_2_inspect_selected_channels(
    datamodule: ArrayDataModule, capsys: pytest.CaptureFixture[str]
) -> None:
    from bandselect.selectors import SoftChannelSelector
    from bandselect.training import StatisticalTrainer

    selector = SoftChannelSelector(n_select=3, input_channels=61, init_method="variance")  # filled
    StatisticalTrainer(pipeline=_soft_pipeline(selector), datamodule=datamodule).fit()  # filled

    # Get current selection weights
    weights = selector.get_selection_weights(hard=False)  # Soft weights
    print(f"Channel weights: {weights}")  # [0.05, 0.12, ..., 1.82, ...] sums to n_select

    # Get hard selection (top-k)
    hard_weights = selector.get_selection_weights(hard=True)
    top_k_indices = torch.where(hard_weights > 0)[0]
    print(f"Selected channels: {top_k_indices}")  # [15, 28, 41]

    assert float(weights.sum()) == pytest.approx(3.0, abs=1e-5)
    assert len(top_k_indices) == 3
    assert set(top_k_indices.tolist()) == set(torch.topk(selector.channel_logits, 3).indices.tolist())
    assert "Selected channels: tensor([" in capsys.readouterr().out


def test_yaml_soft_channel_selector_with_rx_supplied(
    seed_yaml: Path, datamodule: ArrayDataModule, samson: dict[str, np.ndarray]
) -> None:
    from bandselect.nodes import RXDetector

    # The file as written; the seed's downstream `rx` node, which it does not define, comes from nodes=.
    rx = RXDetector(input_channels=61, background="batch")
    pipeline = Pipeline.from_yaml(seed_yaml / "soft_channel_selector.yaml", nodes={"rx": rx})
    assert pipeline.nodes["rx"] is rx
    selector = pipeline.nodes["selector"]
    assert type(selector).__name__ == "SoftChannelSelector"
    assert selector.config["init_method"] == "variance" and selector.hard is False
    assert pipeline.nodes["entropy_loss"].weight == 0.01 and pipeline.nodes["diversity_loss"].weight == 0.05

    from bandselect.training import StatisticalTrainer

    assert StatisticalTrainer(pipeline=pipeline, datamodule=datamodule).fit() == ["selector"]
    pixels = samson["cube"].reshape(-1, N_BANDS).astype(np.float64)
    np.testing.assert_allclose(  # "Result: channel_logits = log(variance_per_channel)", data-set wide
        selector.channel_logits.numpy(), np.log(pixels.var(axis=0) + 1e-6), rtol=1e-4, atol=1e-4
    )
    pipeline.eval()
    out = pipeline.run(cube=torch.from_numpy(samson["cube"][:1]))
    assert out["rx"]["scores"].shape == (1, 47, 47, 1)
    assert out["entropy_loss"]["loss"].ndim == 0 and out["diversity_loss"]["loss"].ndim == 0
    # Evaluation mode: deterministic weights, the default relaxed top-3 of the logits at T_init = 5.0
    # (σ((logits − τ) / T) summing to 3), feeding both losses.
    logits = selector.channel_logits.double().numpy()
    weights = projection_weights_reference(logits, 3, 5.0)
    np.testing.assert_allclose(out["selector"]["weights"].numpy(), weights, rtol=1e-5)
    # The seed's relaxation, 3·softmax(logits / T_init), stays available as relaxation="softmax".
    seed_relaxation = type(selector)(**{**selector.config, "relaxation": "softmax"})
    seed_relaxation.load_state_dict(selector.state_dict())
    p = np.exp((logits - logits.max()) / 5.0)
    np.testing.assert_allclose(
        seed_relaxation.eval().get_selection_weights().double().numpy(), 3.0 * p / p.sum(), rtol=1e-5
    )
    q = weights / weights.sum()
    entropy = -float((q * np.log(q)).sum())
    assert float(out["entropy_loss"]["loss"]) == pytest.approx(-0.01 * entropy, rel=1e-4)
    excess = np.maximum(weights - 1.0, 0.0)
    assert float(out["diversity_loss"]["loss"]) == pytest.approx(
        0.05 * float((excess**2).sum()), rel=1e-4, abs=1e-9
    )


# ------------------------------------------------------------------------------------ TopKIndices
def test_top_k_indices_example(capsys: pytest.CaptureFixture[str]) -> None:
    from bandselect.selectors import SoftChannelSelector, TopKIndices

    # Create selector and top-k extractor
    selector = SoftChannelSelector(n_select=3, input_channels=61)
    top_k = TopKIndices(k=3)
    pipeline = Pipeline()  # filled
    pipeline.add_node(selector)  # filled
    pipeline.add_node(top_k)  # filled

    # Connect in pipeline
    pipeline.connect(
        (selector.weights, top_k.weights),
    )
    with torch.no_grad():  # filled: "After training" (a trained selector prefers 15, 28, 41)
        selector.channel_logits[[15, 28, 41]] = 4.0

    # After training, get selected indices
    outputs = top_k.forward(weights=selector.get_selection_weights(hard=True))
    print(f"Top 3 channels: {outputs['indices']}")  # tensor([15, 28, 41])
    assert capsys.readouterr().out.strip() == "Top 3 channels: tensor([15, 28, 41])"


def test_yaml_top_k_indices(seed_yaml: Path, cube: torch.Tensor) -> None:
    pipeline = Pipeline.from_yaml(seed_yaml / "top_k_indices.yaml")
    assert pipeline.nodes["top_k"].k == 3
    assert [str(c) for c in pipeline.connections] == ["selector.weights → top_k.weights"]
    # The seed's fragment leaves selector.data unconnected; a runnable pipeline feeds it the cube.
    pipeline.connect(("data.cube", "selector.data"))
    pipeline.eval()
    assert pipeline.run(cube=cube)["top_k"]["indices"].tolist() == [0, 1, 2]  # uniform: ties to lower


# ------------------------------------------------------------------------------------ fixed selectors
def test_baseline_false_rgb_example(
    cube: torch.Tensor, wavelengths: torch.Tensor, capsys: pytest.CaptureFixture[str]
) -> None:
    from bandselect.selectors import BaselineFalseRGBSelector

    # Default: Red=650nm, Green=550nm, Blue=450nm
    baseline = BaselineFalseRGBSelector(target_wavelengths=(650.0, 550.0, 450.0))

    # Use in pipeline
    outputs = baseline.forward(cube=cube, wavelengths=wavelengths)
    rgb = outputs["rgb_image"]  # [B, H, W, 3] in [0, 1]
    print(outputs["band_info"])

    assert rgb.shape == (2, 47, 47, 3) and float(rgb.min()) == 0.0 and float(rgb.max()) == 1.0
    info = outputs["band_info"]
    assert list(info) == ["strategy", "band_indices", "band_wavelengths_nm", "target_wavelengths_nm"]
    wl = wavelengths.numpy()
    assert info["band_indices"] == [int(np.argmin(np.abs(wl - t))) for t in (650.0, 550.0, 450.0)]
    assert all(abs(w - t) < 5.0 for w, t in zip(info["band_wavelengths_nm"], (650, 550, 450), strict=True))
    assert "'strategy': 'baseline_false_rgb'" in capsys.readouterr().out


class AdaClipSink(Node):
    """Stands in for the seed's `adaclip` node: takes the RGB image and reports what it received."""

    INPUT_PORTS = (PortSpec("rgb_input", torch.float32, ("B", "H", "W", 3), "RGB image"),)
    OUTPUT_PORTS = (PortSpec("received", "dict", (), "shape and range of the image"),)

    def __init__(self) -> None:
        super().__init__()

    def forward(self, rgb_input: torch.Tensor) -> dict[str, Any]:
        return {"received": {"shape": tuple(rgb_input.shape), "max": float(rgb_input.max())}}


def test_yaml_baseline_false_rgb_into_adaclip(
    seed_yaml: Path, cube: torch.Tensor, wavelengths: torch.Tensor
) -> None:
    # The file as written; the `adaclip` node it feeds comes from nodes= (a ready, unregistered node).
    pipeline = Pipeline.from_yaml(seed_yaml / "baseline_false_rgb.yaml", nodes={"adaclip": AdaClipSink()})
    assert pipeline.topological_order() == ["baseline_rgb", "adaclip"]
    out = pipeline.run(cube=cube, wavelengths=wavelengths)
    assert out["adaclip"]["received"] == {"shape": (2, 47, 47, 3), "max": 1.0}
    assert out["baseline_rgb"]["band_info"]["target_wavelengths_nm"] == [650.0, 550.0, 450.0]


def test_cir_false_color_example(
    cube: torch.Tensor, wavelengths: torch.Tensor, capsys: pytest.CaptureFixture[str]
) -> None:
    from bandselect.selectors import CIRFalseColorSelector

    # CIR mapping: NIR=860nm → R, Red=670nm → G, Green=560nm → B
    cir = CIRFalseColorSelector(
        nir_nm=860.0,
        red_nm=670.0,
        green_nm=560.0,
    )

    outputs = cir.forward(cube=cube, wavelengths=wavelengths)
    print(outputs["band_info"]["channel_mapping"])
    # {'R': 'NIR', 'G': 'Red', 'B': 'Green'}

    assert capsys.readouterr().out.strip() == "{'R': 'NIR', 'G': 'Red', 'B': 'Green'}"
    nir, red, green = outputs["band_info"]["band_wavelengths_nm"]
    assert abs(nir - 860) < 5 and abs(red - 670) < 5 and abs(green - 560) < 5


def test_high_contrast_example(cube: torch.Tensor, wavelengths: torch.Tensor) -> None:
    from bandselect.selectors import HighContrastBandSelector

    # Select high-contrast bands in visible spectrum windows
    high_contrast = HighContrastBandSelector(
        windows=((440, 500), (500, 580), (610, 700)),  # B, G, R
        alpha=0.1,  # Laplacian weight
    )

    outputs = high_contrast.forward(cube=cube, wavelengths=wavelengths)
    # Selects bands with max(variance + 0.1 * laplacian_energy) per window

    wl = wavelengths.numpy()
    red, green, blue = outputs["band_info"]["band_indices"]
    assert 610 <= wl[red] <= 700 and 500 <= wl[green] <= 580 and 440 <= wl[blue] <= 500
    for index, window in zip((blue, green, red), high_contrast.windows, strict=True):
        candidates = np.flatnonzero((wl >= window[0]) & (wl <= window[1]))
        scores = high_contrast.band_scores(cube, candidates)
        assert index == candidates[int(torch.argmax(scores))]


# ------------------------------------------------------------------------------------ supervised
def _supervised_pipeline(node: Node) -> Pipeline:
    pipeline = Pipeline()
    name = pipeline.add_node(node)
    pipeline.connect(
        ("data.cube", f"{name}.cube"),
        ("data.mask", f"{name}.mask"),
        ("data.wavelengths", f"{name}.wavelengths"),
    )
    return pipeline


def test_supervised_cir_example(
    datamodule: ArrayDataModule, wavelengths: torch.Tensor, capsys: pytest.CaptureFixture[str]
) -> None:
    from bandselect.selectors import SupervisedCIRBandSelector

    # Create supervised CIR selector
    supervised_cir = SupervisedCIRBandSelector(
        num_spectral_bands=61,
        windows=((840.0, 910.0), (650.0, 720.0), (500.0, 570.0)),  # NIR, R, G
        score_weights=(1.0, 1.0, 1.0),  # Equal weight to Fisher, AUC, MI
        lambda_penalty=0.5,  # Balance relevance and redundancy
    )
    pipeline = _supervised_pipeline(supervised_cir)  # filled

    # Statistical initialization with labeled data
    from bandselect.training import StatisticalTrainer

    # Create trainer with pipeline and data
    trainer = StatisticalTrainer(pipeline=pipeline, datamodule=datamodule)
    trainer.fit()  # Automatically initializes supervised_cir

    # Check selected bands
    print(f"Selected indices: {supervised_cir.selected_indices}")  # e.g., [52, 28, 10]
    print(f"Fisher scores: {supervised_cir.fisher_scores}")  # [0.12, 0.08, ...]
    print(f"AUC scores: {supervised_cir.auc_scores}")  # [0.73, 0.68, ...]

    assert "Selected indices: tensor([" in capsys.readouterr().out
    wl = wavelengths.numpy()
    picks = supervised_cir.selected_indices.tolist()
    for pick, (low, high) in zip(picks, supervised_cir.windows, strict=True):
        assert low <= wl[pick] <= high
    # The first (NIR) pick is the most relevant band of its window and separates trees from the rest.
    nir = np.flatnonzero((wl >= 840.0) & (wl <= 910.0))
    assert picks[0] == nir[int(supervised_cir.band_scores[nir].argmax())]
    assert float(supervised_cir.auc_scores[picks[0]]) > 0.7
    # Same answer as fitting directly from the arrays.
    direct = SupervisedCIRBandSelector(num_spectral_bands=61).fit(
        datamodule.cube, datamodule.mask, datamodule.wavelengths
    )
    assert direct.selected_indices.tolist() == picks


def test_yaml_supervised_cir(
    seed_yaml: Path, datamodule: ArrayDataModule, cube: torch.Tensor, wavelengths: torch.Tensor
) -> None:
    from bandselect.training import StatisticalTrainer

    pipeline = Pipeline.from_yaml(seed_yaml / "supervised_cir.yaml")
    node = pipeline.nodes["supervised_cir"]
    assert node.windows == ((840.0, 910.0), (650.0, 720.0), (500.0, 570.0)) and node.lambda_penalty == 0.5
    StatisticalTrainer(pipeline=pipeline, datamodule=datamodule).fit()
    out = pipeline.run(cube=cube, wavelengths=wavelengths)["supervised_cir"]
    assert out["rgb_image"].shape == (2, 47, 47, 3)
    assert out["band_info"]["band_indices"] == node.selected_indices.tolist()


# ------------------------------------------------------------------------------------ the YAML files
#: Each seed YAML file: None when it loads as written, else the node it connects to without defining it
#: and the connection that names it.
SEED_FILES: dict[str, tuple[str, str] | None] = {
    "top_k_indices.yaml": None,
    "supervised_cir.yaml": None,
    "soft_channel_selector.yaml": ("rx", "connection #2 [selector.selected, rx.data]"),
    "baseline_false_rgb.yaml": ("adaclip", "connection #3 [baseline_rgb.rgb_image, adaclip.rgb_input]"),
}


def _supplied(name: str) -> SuppliedNode:
    from bandselect.nodes import RXDetector

    return {"rx": RXDetector(input_channels=61), "adaclip": AdaClipSink()}[name]


@pytest.mark.parametrize("file_name", sorted(SEED_FILES))
def test_each_seed_yaml_file_loads_as_written(seed_yaml: Path, file_name: str) -> None:
    assert sorted(path.name for path in seed_yaml.glob("*.yaml")) == sorted(SEED_FILES)  # none untested
    path = seed_yaml / file_name
    missing = SEED_FILES[file_name]
    if missing is None:
        pipeline = Pipeline.from_yaml(path)
    else:
        name, connection = missing
        with pytest.raises(PipelineError) as info:
            Pipeline.from_yaml(path)
        assert f"{connection}: node {name!r} is not defined" in str(info.value)
        assert f"nodes={{{name!r}: NodeType(...)}}" in str(info.value)  # the fix says how to supply it
        node = _supplied(name)
        pipeline = Pipeline.from_yaml(path, nodes={name: node})
        assert pipeline.nodes[name] is node
    # As written: every node the file defines with its type and config, every connection in file order.
    written = yaml.safe_load(path.read_text())
    assert list(pipeline.nodes) == [*written["nodes"], *([missing[0]] if missing else [])]
    assert [[c.source, c.target] for c in pipeline.connections] == written["connections"]
    for name, definition in written["nodes"].items():
        built = node_definition(name, pipeline.nodes[name])
        assert built["type"] == definition["type"]
        assert {key: built["config"][key] for key in definition.get("config") or {}} == (
            definition.get("config") or {}
        )


def test_supervised_full_spectrum_example(
    datamodule: ArrayDataModule, capsys: pytest.CaptureFixture[str]
) -> None:
    from bandselect.selectors import SupervisedFullSpectrumBandSelector

    # Select top-3 bands globally (no window constraints)
    full_spectrum = SupervisedFullSpectrumBandSelector(
        num_spectral_bands=61,
        score_weights=(1.0, 1.0, 1.0),
        lambda_penalty=0.5,
    )
    pipeline = _supervised_pipeline(full_spectrum)  # filled

    from bandselect.training import StatisticalTrainer

    trainer = StatisticalTrainer(pipeline=pipeline, datamodule=datamodule)
    trainer.fit()  # Automatically initializes full_spectrum

    # May select bands anywhere: e.g., [7, 28, 52] (440nm, 650nm, 860nm)
    print(full_spectrum.selected_indices)

    picks = full_spectrum.selected_indices.tolist()
    assert len(set(picks)) == 3 and capsys.readouterr().out.startswith("tensor([")
    assert picks[0] == int(full_spectrum.band_scores.argmax())


# ------------------------------------------------------------------------------------ statistical init
def test_statistical_initialization_example(
    datamodule: ArrayDataModule, samson: dict[str, np.ndarray]
) -> None:
    from bandselect.selectors import SoftChannelSelector  # filled

    selector = SoftChannelSelector(n_select=3, input_channels=61, init_method="variance")  # filled
    pipeline = _soft_pipeline(selector)  # filled

    # Variance-based initialization (init_method="variance")
    from bandselect.training import StatisticalTrainer

    # Create trainer with pipeline and data
    trainer = StatisticalTrainer(pipeline=pipeline, datamodule=datamodule)
    trainer.fit()  # Automatically initializes selector

    # Result: channel_logits = log(variance_per_channel)
    # High-variance channels get higher initial weights
    variance = samson["cube"].reshape(-1, N_BANDS).astype(np.float64).var(axis=0)
    np.testing.assert_allclose(selector.channel_logits.numpy(), np.log(variance + 1e-6), rtol=1e-4, atol=1e-4)
    assert int(selector.get_selection_weights().argmax()) == int(np.argmax(variance))


# ------------------------------------------------------------------------------------ annealing
def test_temperature_annealing_example(datamodule: ArrayDataModule) -> None:
    from bandselect.selectors import SoftChannelSelector  # filled

    selector = SoftChannelSelector(n_select=3, input_channels=61)  # filled
    selector.unfreeze()  # filled
    train_epoch = _epoch_trainer(selector, datamodule)  # filled

    # Manual temperature control
    selector.temperature = 5.0  # High temp: explore all channels
    train_epoch(...)
    selector.update_temperature(epoch=0)  # temp = 5.0 * (0.9 ** 0) = 5.0
    assert selector.temperature == pytest.approx(5.0)
    selector.update_temperature(epoch=1)  # temp = 5.0 * (0.9 ** 1) = 4.5
    assert selector.temperature == pytest.approx(4.5)
    train_epoch(...)
    # ... after many epochs
    selector.update_temperature(epoch=20)  # temp = max(0.1, 5.0 * 0.9^20) ≈ 0.608
    assert selector.temperature == pytest.approx(0.608, abs=5e-4)
    selector.update_temperature(epoch=50)  # temp = 0.1 (floor reached)
    assert selector.temperature == pytest.approx(0.1)


# ------------------------------------------------------------------------------------ common issues
def test_issue_1_channel_collapse_solution() -> None:
    from bandselect.selectors import SoftChannelSelector  # filled

    # filled: the seed's relaxation, 3·softmax((logits + g) / T), whose low-temperature limit puts the
    # whole budget on one channel; a collapsed selector after annealing.
    selector = SoftChannelSelector(n_select=3, input_channels=61, relaxation="softmax")
    selector.update_temperature(epoch=50)  # filled
    with torch.no_grad():  # filled
        selector.channel_logits[2] = 1.0

    # Problem: Selector collapses to 1-2 channels
    weights = selector.get_selection_weights()
    # Output: [0.0, 0.0, 2.98, 0.0, ...] # Almost all weight on channel 2
    assert float(weights[2]) > 2.9

    # Solution: Add diversity regularizer
    from bandselect.selectors import SelectorDiversityRegularizer

    diversity_loss = SelectorDiversityRegularizer(weight=0.05)
    assert float(diversity_loss.forward(weights=weights)["loss"]) > 0.05 * 1.9**2

    # filled: the default relaxation (relaxed top-k) cannot collapse at a low temperature: the same
    # logits give at most 1.0 per channel, so the diversity penalty is zero.
    default = SoftChannelSelector(n_select=3, input_channels=61)
    default.update_temperature(epoch=50)
    default.load_state_dict(selector.state_dict())
    spread = default.get_selection_weights()
    assert float(spread.max()) <= 1.0 + 1e-6 and float(spread[2]) == pytest.approx(1.0, abs=0.01)
    assert float(diversity_loss.forward(weights=spread)["loss"]) == pytest.approx(0.0, abs=1e-9)


def test_issue_2_temperature_not_annealing(datamodule: ArrayDataModule) -> None:
    from bandselect.selectors import SoftChannelSelector  # filled

    selector = SoftChannelSelector(n_select=3, input_channels=61)  # filled
    selector.unfreeze()  # filled
    train_epoch = _epoch_trainer(selector, datamodule)  # filled

    # Problem: Forgot to call update_temperature
    for epoch in range(50):  # noqa: B007 - the seed's loop, as written
        train_epoch(...)
    # selector.temperature still 5.0!
    assert selector.temperature == 5.0

    # Solution: Add callback or manual update
    for epoch in range(50):
        selector.update_temperature(epoch=epoch)
        train_epoch(...)
    assert selector.temperature == pytest.approx(0.1)  # 5.0 · 0.9^49 is below the floor


def test_issue_3_unfreeze_not_called(datamodule: ArrayDataModule) -> None:
    from bandselect.selectors import SoftChannelSelector  # filled

    pipeline = Pipeline()  # filled

    # Problem: channel_logits not trainable
    from bandselect.training import StatisticalTrainer

    selector = SoftChannelSelector(n_select=3, input_channels=61)
    pipeline.add_node(selector)
    pipeline.connect(("data.cube", selector.data))  # filled
    trainer = StatisticalTrainer(pipeline=pipeline, datamodule=datamodule)
    trainer.fit()  # Initializes selector
    # selector.channel_logits is a buffer, not a parameter!
    assert "channel_logits" in dict(selector.named_buffers())
    with pytest.raises(ValueError, match="empty parameter list"):  # filled: the seed's "# Empty!"
        optimizer = torch.optim.Adam(selector.parameters())  # Empty!

    # Solution: Unfreeze before creating optimizer
    selector.unfreeze()  # Converts buffer → nn.Parameter
    optimizer = torch.optim.Adam(selector.parameters())  # Now includes channel_logits
    assert optimizer.param_groups[0]["params"][0] is selector.channel_logits


# ------------------------------------------------------------------------------------ custom selectors
def test_creating_custom_selectors(cube: torch.Tensor, wavelengths: torch.Tensor) -> None:
    from bandselect.selectors import BandSelectorBase

    def your_selection_algorithm(cube: torch.Tensor, wavelengths: torch.Tensor) -> list[int]:  # filled
        variance = cube.reshape(-1, cube.shape[-1]).var(dim=0)
        return [int(i) for i in torch.argsort(variance, descending=True)[:3]]

    class CustomBandSelector(BandSelectorBase):
        def __init__(self, custom_param: float = 1.0, **kwargs: Any) -> None:
            super().__init__(custom_param=custom_param, **kwargs)
            self.custom_param = custom_param

        def forward(self, cube: Any, wavelengths: Any, **kwargs: Any) -> dict[str, Any]:
            # Your custom selection logic
            indices = your_selection_algorithm(cube, wavelengths)

            # Compose RGB using base class helper
            rgb = self._compose_rgb(cube, indices)

            band_info = {
                "strategy": "custom",
                "band_indices": indices,
                # ... additional metadata
            }
            return {"rgb_image": rgb, "band_info": band_info}

    node = CustomBandSelector(custom_param=2.0)
    out = node.forward(cube=cube, wavelengths=wavelengths)
    assert out["rgb_image"].shape == (2, 47, 47, 3) and node.config == {"custom_param": 2.0}
    assert out["band_info"]["band_indices"] == your_selection_algorithm(cube, wavelengths)

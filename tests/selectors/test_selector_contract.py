"""One contract suite over every selector node and regularizer.

Construct with defaults, reject bad arguments, forward matches the declared ports, state_dict save/load
reproduces the outputs exactly, and bad inputs raise typed errors naming expected, found and the fix.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from selector_fixtures import WAVELENGTHS_61, labelled_cube

from bandselect.errors import (
    BandSelectError,
    ConfigError,
    NonFiniteError,
    NotFittedError,
    ShapeError,
    WavelengthError,
)
from bandselect.pipeline import Pipeline
from bandselect.pipeline.node import Node
from bandselect.pipeline.registry import get_node_class
from bandselect.selectors import (
    BaselineFalseRGBSelector,
    CIRFalseColorSelector,
    ConcreteBandSelector,
    CorrelationClusterBandSelector,
    FixedWavelengthSelector,
    HighContrastBandSelector,
    OrthogonalProjectionBandSelector,
    SelectorDiversityRegularizer,
    SelectorEntropyRegularizer,
    SoftChannelSelector,
    SupervisedCIRBandSelector,
    SupervisedFullSpectrumBandSelector,
    SupervisedWindowedFalseRGBSelector,
    TopKIndices,
)

DATA = labelled_cube({47: 3.0, 27: 2.0, 16: 1.5, 6: 1.5, 26: 2.0}, batch=2, size=16, seed=3)
CUBE = DATA.cube
WEIGHTS = torch.softmax(torch.randn(61, generator=torch.Generator().manual_seed(1)), 0) * 3


def _nothing(node: Node) -> None:
    return None


def _soft_prepare(node: Node) -> None:
    node.update_temperature(epoch=7)
    with torch.no_grad():
        node.channel_logits.copy_(torch.randn(61, generator=torch.Generator().manual_seed(5)))


def _soft_variance_prepare(node: Node) -> None:
    node.fit(CUBE)
    node.update_temperature(epoch=3)


def _concrete_prepare(node: Node) -> None:
    node.update_temperature(epoch=7)
    with torch.no_grad():
        node.logits.copy_(torch.randn(3, 61, generator=torch.Generator().manual_seed(5)))


def _supervised_prepare(node: Node) -> None:
    node.fit(DATA.cube, DATA.mask, DATA.wavelengths)


@dataclass
class Case:
    id: str
    build: Callable[[], Node]
    bad_args: list[dict[str, Any]]
    port: str = "cube"  # the input carrying the cube, or "weights"
    wavelengths: bool = True
    configured_channels: bool = False
    prepare: Callable[[Node], None] = _nothing
    needs_fit: bool = False
    extra_inputs: dict[str, Any] = field(default_factory=dict)

    def inputs(self) -> dict[str, Any]:
        if self.port == "weights":
            return {"weights": WEIGHTS.clone()}
        values: dict[str, Any] = {self.port: CUBE.clone()}
        if self.wavelengths:
            values["wavelengths"] = WAVELENGTHS_61.clone()
        values.update(self.extra_inputs)
        return values


CASES = [
    Case(
        "SoftChannelSelector",
        lambda: SoftChannelSelector(n_select=3, input_channels=61),
        [
            {"n_select": 0, "input_channels": 61},
            {"n_select": 62, "input_channels": 61},
            {"n_select": 3, "input_channels": 0},
            {"n_select": 3.5, "input_channels": 61},
            {"n_select": 3, "input_channels": 61, "init_method": "pca"},
            {"n_select": 3, "input_channels": 61, "temperature_init": 0.0},
            {"n_select": 3, "input_channels": 61, "temperature_min": -1.0},
            {"n_select": 3, "input_channels": 61, "temperature_min": 6.0},
            {"n_select": 3, "input_channels": 61, "temperature_decay": 1.5},
            {"n_select": 3, "input_channels": 61, "hard": "yes"},
            {"n_select": 3, "input_channels": 61, "eps": 0.0},
            {"n_select": 3, "input_channels": 61, "eps": math.nan},
        ],
        port="data",
        wavelengths=False,
        configured_channels=True,
        prepare=_soft_prepare,
    ),
    Case(
        "SoftChannelSelector-variance-hard",
        lambda: SoftChannelSelector(n_select=3, input_channels=61, init_method="variance", hard=True),
        [],
        port="data",
        wavelengths=False,
        configured_channels=True,
        prepare=_soft_variance_prepare,
        needs_fit=True,
    ),
    Case(
        "SoftChannelSelector-softmax-straight-through",
        lambda: SoftChannelSelector(
            n_select=3, input_channels=61, relaxation="softmax", straight_through=True
        ),
        [
            {"n_select": 3, "input_channels": 61, "relaxation": "gumbel"},
            {"n_select": 3, "input_channels": 61, "straight_through": "yes"},
            {"n_select": 3, "input_channels": 61, "seed": -1},
        ],
        port="data",
        wavelengths=False,
        configured_channels=True,
        prepare=_soft_prepare,
    ),
    Case(
        "ConcreteBandSelector",
        lambda: ConcreteBandSelector(input_channels=61, seed=0),
        [
            {"input_channels": 0},
            {"input_channels": 61, "n_select": 62},
            {"input_channels": 61, "n_select": 0},
            {"input_channels": 61, "init_method": "pca"},
            {"input_channels": 61, "temperature_init": 0.0},
            {"input_channels": 61, "temperature_min": 6.0},
            {"input_channels": 61, "temperature_decay": 0.0},
            {"input_channels": 61, "hard": 1},
            {"input_channels": 61, "eps": -1e-6},
        ],
        port="data",
        wavelengths=False,
        configured_channels=True,
        prepare=_concrete_prepare,
    ),
    Case(
        "ConcreteBandSelector-variance-soft",
        lambda: ConcreteBandSelector(input_channels=61, n_select=4, init_method="variance", hard=False),
        [],
        port="data",
        wavelengths=False,
        configured_channels=True,
        prepare=_soft_variance_prepare,
        needs_fit=True,
    ),
    Case("TopKIndices", lambda: TopKIndices(k=3), [{"k": 0}, {"k": 2.5}, {"k": True}], port="weights"),
    Case(
        "BaselineFalseRGBSelector",
        BaselineFalseRGBSelector,
        [
            {"target_wavelengths": (650.0, 550.0)},
            {"target_wavelengths": (650.0, "green", 450.0)},
            {"target_wavelengths": (650.0, math.inf, 450.0)},
            {"tolerance_nm": -1.0},
        ],
    ),
    Case(
        "FixedWavelengthSelector",
        lambda: FixedWavelengthSelector(target_wavelengths=(450.0, 550.0, 650.0, 750.0, 850.0)),
        [
            {"target_wavelengths": ()},
            {"target_wavelengths": "550"},
            {"target_wavelengths": (550.0, "red")},
            {"target_wavelengths": (550.0, 550.0)},
            {"target_wavelengths": (0.0,)},
            {"target_wavelengths": (550.0,), "tolerance_nm": -1.0},
        ],
    ),
    Case(
        "CIRFalseColorSelector",
        CIRFalseColorSelector,
        [{"nir_nm": "nir"}, {"red_nm": math.nan}, {"green_nm": -5.0}, {"tolerance_nm": "x"}],
    ),
    Case(
        "HighContrastBandSelector",
        HighContrastBandSelector,
        [
            {"windows": ((440, 500),)},
            {"windows": ((500, 440), (500, 580), (610, 700))},
            {"windows": "440-500"},
            {"alpha": -0.1},
        ],
        # Its forward needs no fit; the fit gives the data-set selection it reports (and saves).
        prepare=lambda node: node.fit(CUBE, WAVELENGTHS_61),
    ),
    Case(
        "SupervisedCIRBandSelector",
        lambda: SupervisedCIRBandSelector(num_spectral_bands=61),
        [
            {"num_spectral_bands": 0},
            {"num_spectral_bands": 61, "score_weights": (0.0, 0.0, 0.0)},
            {"num_spectral_bands": 61, "score_weights": (1.0, 1.0)},
            {"num_spectral_bands": 61, "lambda_penalty": -1.0},
            {"num_spectral_bands": 61, "criterion": "lasso"},
            {"num_spectral_bands": 61, "windows": ((840.0, 910.0), (650.0, 720.0))},
        ],
        configured_channels=True,
        prepare=_supervised_prepare,
        needs_fit=True,
    ),
    Case(
        "SupervisedWindowedFalseRGBSelector",
        lambda: SupervisedWindowedFalseRGBSelector(num_spectral_bands=61, criterion="separability"),
        [{"num_spectral_bands": "61"}, {"num_spectral_bands": 61, "windows": ((500.0, 440.0),) * 3}],
        configured_channels=True,
        prepare=_supervised_prepare,
        needs_fit=True,
    ),
    Case(
        "SupervisedFullSpectrumBandSelector",
        lambda: SupervisedFullSpectrumBandSelector(num_spectral_bands=61),
        [
            {"num_spectral_bands": 61, "k": 2},
            {"num_spectral_bands": 61, "k": 62},
            {"num_spectral_bands": 61, "criterion": None},
        ],
        configured_channels=True,
        prepare=_supervised_prepare,
        needs_fit=True,
    ),
    Case(
        "OrthogonalProjectionBandSelector",
        lambda: OrthogonalProjectionBandSelector(num_spectral_bands=61, k=4),
        [
            {"num_spectral_bands": 61, "k": 2},
            {"num_spectral_bands": 61, "k": 62},
            {"num_spectral_bands": 2.0},
        ],
        configured_channels=True,
        prepare=lambda node: node.fit(CUBE),
        needs_fit=True,
    ),
    Case(
        "CorrelationClusterBandSelector",
        lambda: CorrelationClusterBandSelector(num_spectral_bands=61),
        [{"num_spectral_bands": 61, "k": 0}, {"num_spectral_bands": 61, "representative": "mean"}],
        configured_channels=True,
        prepare=lambda node: node.fit(CUBE, WAVELENGTHS_61),
        needs_fit=True,
    ),
    Case(
        "SelectorEntropyRegularizer",
        SelectorEntropyRegularizer,
        [{"weight": -1.0}, {"weight": "a"}, {"weight": math.inf}],
        port="weights",
    ),
    Case(
        "SelectorDiversityRegularizer",
        SelectorDiversityRegularizer,
        [{"weight": -0.05}, {"weight": None}],
        port="weights",
    ),
]
CUBE_CASES = [c for c in CASES if c.port != "weights"]
WAVELENGTH_CASES = [c for c in CUBE_CASES if c.wavelengths]
CHANNEL_CASES = [c for c in CASES if c.configured_channels]
FIT_CASES = [c for c in CASES if c.needs_fit]


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def _ready(case: Case) -> Node:
    node = case.build()
    case.prepare(node)
    return node.eval()


def _assert_house_message(error: BaseException) -> None:
    text = str(error)
    assert "expected" in text and "found" in text and "Fix:" in text, text


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_constructs_with_defaults_and_is_registered(case: Case) -> None:
    node = case.build()
    cls = type(node)
    assert get_node_class(cls.__name__) is cls
    assert type(node)(**node.config).config == node.config
    assert node.INPUT_PORTS and node.OUTPUT_PORTS
    for section in ("Parameters", "Shape", "Examples"):
        assert section in (cls.__doc__ or ""), section


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_rejects_bad_arguments(case: Case) -> None:
    cls = type(case.build())
    for kwargs in case.bad_args:
        with pytest.raises(ConfigError) as info:
            cls(**kwargs)
        _assert_house_message(info.value)
        assert any(f"'{name}" in str(info.value) for name in kwargs), str(info.value)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_forward_matches_declared_ports(case: Case) -> None:
    node = _ready(case)
    outputs = node.forward(**case.inputs())
    assert set(outputs) == set(node.OUTPUT_PORTS)
    for name, spec in node.OUTPUT_PORTS.items():
        value = outputs[name]
        if spec.dtype == "dict":
            assert isinstance(value, dict) and value
            continue
        assert isinstance(value, torch.Tensor)
        assert value.dtype == spec.dtype, name
        assert value.ndim == len(spec.shape), name
        for size, dim in zip(value.shape, spec.shape, strict=True):
            if isinstance(dim, int):
                assert size == dim
        assert bool(torch.isfinite(value.float()).all())


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_state_dict_round_trip_gives_identical_outputs(case: Case) -> None:
    node = _ready(case)
    expected = node.forward(**case.inputs())
    buffer = io.BytesIO()
    torch.save(node.state_dict(), buffer)
    buffer.seek(0)
    fresh = type(node)(**node.config)
    assert set(fresh.state_dict()) == set(node.state_dict())
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    fresh.eval()
    assert fresh.is_initialized
    found = fresh.forward(**case.inputs())
    for name in expected:
        _assert_same(expected[name], found[name])


@pytest.mark.parametrize("case", CUBE_CASES, ids=_ids(CUBE_CASES))
def test_pipeline_save_load_gives_identical_outputs(case: Case, tmp_path: Any) -> None:
    node = _ready(case)
    pipeline = Pipeline()
    name = pipeline.add_node(node)
    pipeline.connect(("data.cube", f"{name}.{case.port}"))
    if case.wavelengths:
        pipeline.connect(("data.wavelengths", f"{name}.wavelengths"))
    pipeline.eval()
    data = {"cube": CUBE.clone(), "wavelengths": WAVELENGTHS_61.clone()}
    expected = pipeline.run(**data)[name]
    loaded = Pipeline.load(pipeline.save(tmp_path / "saved")).eval()
    found = loaded.run(**data)[name]
    for port in expected:
        _assert_same(expected[port], found[port])


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_wrong_rank_is_a_shape_error(case: Case) -> None:
    node = _ready(case)
    inputs = case.inputs()
    inputs[case.port] = inputs[case.port][0] if case.port != "weights" else inputs[case.port][None, :]
    with pytest.raises(ShapeError) as info:
        node.forward(**inputs)
    _assert_house_message(info.value)


@pytest.mark.parametrize("case", CHANNEL_CASES, ids=_ids(CHANNEL_CASES))
def test_wrong_channel_count_is_a_shape_error(case: Case) -> None:
    node = _ready(case)
    inputs = case.inputs()
    inputs[case.port] = inputs[case.port][..., :60]
    if case.wavelengths:
        inputs["wavelengths"] = inputs["wavelengths"][:60]
    with pytest.raises(ShapeError) as info:
        node.forward(**inputs)
    _assert_house_message(info.value)
    assert "C=61" in str(info.value) and "C=60" in str(info.value)


@pytest.mark.parametrize("case", WAVELENGTH_CASES, ids=_ids(WAVELENGTH_CASES))
def test_missing_wavelengths_is_a_wavelength_error(case: Case) -> None:
    node = _ready(case)
    inputs = case.inputs()
    del inputs["wavelengths"]
    with pytest.raises(WavelengthError) as info:
        node.forward(**inputs)
    _assert_house_message(info.value)
    assert "data.wavelengths" in str(info.value)


@pytest.mark.parametrize("case", WAVELENGTH_CASES, ids=_ids(WAVELENGTH_CASES))
def test_wavelengths_of_another_length_is_a_wavelength_error(case: Case) -> None:
    node = _ready(case)
    inputs = case.inputs()
    inputs["wavelengths"] = inputs["wavelengths"][:59]
    with pytest.raises(WavelengthError) as info:
        node.forward(**inputs)
    assert "61 values" in str(info.value) and "59 values" in str(info.value)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_nan_input_is_a_non_finite_error(case: Case) -> None:
    node = _ready(case)
    inputs = case.inputs()
    poisoned = inputs[case.port].clone()
    poisoned.view(-1)[5] = math.nan
    inputs[case.port] = poisoned
    with pytest.raises(NonFiniteError) as info:
        node.forward(**inputs)
    _assert_house_message(info.value)


@pytest.mark.parametrize("case", FIT_CASES, ids=_ids(FIT_CASES))
def test_forward_before_initialisation_is_not_fitted_error(case: Case) -> None:
    node = case.build()
    assert node.requires_initial_fit and not node.is_initialized
    with pytest.raises(NotFittedError) as info:
        node.forward(**case.inputs())
    _assert_house_message(info.value)
    assert "StatisticalTrainer" in str(info.value)


def test_every_error_is_a_bandselect_error_and_value_errors_stay_value_errors() -> None:
    for error in (ShapeError, WavelengthError, NonFiniteError, ConfigError):
        assert issubclass(error, BandSelectError) and issubclass(error, ValueError)

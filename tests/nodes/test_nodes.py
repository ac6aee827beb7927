"""RXDetector, ScoreToLogit, AnomalyBCELoss and AUROC: values against references, not shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from bandselect.errors import ConfigError, LabelError, NonFiniteError, NotFittedError, ShapeError
from bandselect.nodes import AUROC, AnomalyBCELoss, RXDetector, ScoreToLogit, binary_auroc
from bandselect.pipeline.registry import get_node_class
from bandselect.stats import BandStatistics


def _scene(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(5, 5))
    pixels = rng.normal(size=(1, 12, 12, 5)) @ mixing
    mask = np.zeros((1, 12, 12, 1), bool)
    mask[0, 3, 4, 0] = mask[0, 8, 9, 0] = True
    pixels[mask[..., 0]] += 6.0
    return torch.tensor(pixels, dtype=torch.float32), torch.tensor(mask)


def _reference_rx(cube: np.ndarray, eps: float) -> np.ndarray:
    x = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
    mu = x.mean(0)
    cov = np.cov(x.T)
    cov += eps * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    centred = x - mu
    return np.einsum("ij,jk,ik->i", centred, np.linalg.inv(cov), centred)


def test_rx_fitted_equals_numpy_mahalanobis() -> None:
    cube, _ = _scene()
    rx = RXDetector(input_channels=5, eps=1e-3)
    rx.fit_from_statistics(BandStatistics.from_arrays(cube.numpy()))
    scores = rx(data=cube)["scores"]
    assert scores.shape == (1, 12, 12, 1) and scores.dtype == torch.float32
    # BandStatistics holds the population covariance, np.cov the sample one: distances scale by N/(N-1).
    n = 144
    expected = _reference_rx(cube.numpy(), 1e-3) * n / (n - 1)
    np.testing.assert_allclose(scores.numpy().ravel(), expected, rtol=1e-3)


def test_rx_batch_background_equals_per_scene_rx_and_finds_anomalies() -> None:
    cube, mask = _scene()
    scores = RXDetector(input_channels=5, background="batch", eps=1e-3)(data=cube)["scores"]
    np.testing.assert_allclose(scores.numpy().ravel(), _reference_rx(cube.numpy(), 1e-3), rtol=1e-3)
    assert float(binary_auroc(scores, mask)) == 1.0


def test_rx_hard_weights_equal_rx_on_the_selected_bands() -> None:
    # A 0/1 weighting equals RX on the selected channels (the ridge keeps the zero channels harmless).
    cube, _ = _scene(1)
    weights = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    full = RXDetector(input_channels=5, background="batch", eps=1e-6)(data=cube * weights)["scores"]
    subset = RXDetector(input_channels=2, background="batch", eps=1e-6)(data=cube[..., [0, 2]])["scores"]
    np.testing.assert_allclose(full.numpy(), subset.numpy(), rtol=2e-3, atol=1e-3)


def test_rx_is_differentiable_in_the_upstream_weights() -> None:
    cube, mask = _scene(2)
    weights = torch.full((5,), 0.5, requires_grad=True)
    scores = RXDetector(input_channels=5, background="batch")(data=cube * weights)["scores"]
    scores[mask].sum().backward()
    assert weights.grad is not None and torch.isfinite(weights.grad).all() and weights.grad.abs().sum() > 0


def test_rx_fit_request_frozen_trainable_and_errors() -> None:
    assert RXDetector(input_channels=3).statistics_request().cube_port == "data"
    batch_rx = RXDetector(input_channels=3, background="batch")
    assert batch_rx.statistics_request() is None and batch_rx.is_initialized
    assert list(dict(RXDetector(input_channels=3).named_parameters())) == []
    trainable = RXDetector(input_channels=3, frozen=False)
    assert sorted(dict(trainable.named_parameters())) == ["covariance", "mean"]
    assert set(trainable.state_dict()) == set(RXDetector(input_channels=3).state_dict())
    with pytest.raises(NotFittedError, match="StatisticalTrainer"):
        RXDetector(input_channels=3)(data=torch.zeros(1, 2, 2, 3))
    with pytest.raises(ShapeError, match=r"\(B, H, W, 3\)"):
        batch_rx(data=torch.zeros(1, 2, 2, 4))
    with pytest.raises(ConfigError, match="background"):
        RXDetector(input_channels=3, background="local")  # type: ignore[arg-type]


def test_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=500), 1)  # many ties
    labels = rng.random(500) < 0.1
    value = AUROC()(
        scores=torch.tensor(scores).reshape(1, 1, 500, 1).float(),
        mask=torch.tensor(labels).reshape(1, 1, 500),
    )["auroc"]
    assert float(value) == pytest.approx(roc_auc_score(labels, scores.astype(np.float32)), abs=1e-12)


def test_auroc_single_class_and_missing_mask() -> None:
    scores = torch.rand(1, 2, 2, 1)
    with pytest.raises(LabelError, match="both classes"):
        AUROC()(scores=scores, mask=torch.zeros(1, 2, 2, 1, dtype=torch.bool))
    empty = torch.zeros(1, 2, 2, dtype=torch.bool)
    assert torch.isnan(AUROC(single_class="nan")(scores=scores, mask=empty)["auroc"])
    with pytest.raises(LabelError, match="mask"):
        AUROC()(scores=scores)


def test_bce_loss_values_pos_weight_and_missing_mask() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0]).reshape(1, 1, 4, 1)
    mask = torch.tensor([True, False, False, False]).reshape(1, 1, 4, 1)
    plain = AnomalyBCELoss(pos_weight=None)(logits=logits, mask=mask)["loss"]
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, mask.float())
    assert float(plain) == pytest.approx(float(expected))
    balanced = AnomalyBCELoss()(logits=logits, mask=mask)["loss"]
    expected_balanced = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, mask.float(), pos_weight=torch.tensor(3.0)
    )
    assert float(balanced) == pytest.approx(float(expected_balanced))
    with pytest.raises(LabelError, match="needs a label mask"):
        AnomalyBCELoss()(logits=logits)
    with pytest.raises(ConfigError):
        AnomalyBCELoss(pos_weight="auto")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"input_channels": 0},
            "The 'input_channels' parameter of RXDetector: expected an int in the range [1, inf], found 0. "
            "Fix: choose input_channels >= 1",
        ),
        (
            {"input_channels": 3.0},
            "The 'input_channels' parameter of RXDetector: expected an int in the range [1, inf], "
            "found 3.0 of type float. Fix: pass input_channels as a whole number",
        ),
        (
            {"input_channels": 3, "eps": -1e-3},
            "The 'eps' parameter of RXDetector: expected a finite float in the range [0, inf], found -0.001. "
            "Fix: choose eps inside that range",
        ),
        (
            {"input_channels": 3, "frozen": "yes"},
            "The 'frozen' parameter of RXDetector: expected a bool, found 'yes' of type str. "
            "Fix: pass frozen=True or frozen=False",
        ),
        (
            {"input_channels": 3, "background": "local"},
            "The 'background' parameter of RXDetector: expected a str among ['batch', 'batch_negatives', "
            "'fitted'], found 'local'. Fix: pass one of 'fitted', 'batch', 'batch_negatives'",
        ),
    ],
)
def test_rx_argument_errors_use_the_house_form(arguments: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        RXDetector(**arguments)
    assert str(info.value) == message
    assert info.value.expected is not None and info.value.found is not None and info.value.fix


def test_rx_data_errors_use_the_house_form() -> None:
    rx = RXDetector(input_channels=3, background="batch")
    with pytest.raises(ShapeError) as info:
        rx(data=torch.zeros(1, 2, 2, 4))
    assert str(info.value) == (
        "input 'data': expected (B, H, W, C) with C=3, found shape (1, 2, 2, 4) (C=4). "
        "Fix: pass a (B, H, W, 3) cube, or build the detector with input_channels set to the cube's "
        "channel count"
    )
    with pytest.raises(ShapeError, match=r"input 'data': expected a rank-4 \(B, H, W, C\) tensor with C=3"):
        rx(data=torch.zeros(2, 2, 3))
    cube = torch.ones(1, 2, 2, 3)
    cube[0, 1, 1, 2] = float("nan")
    with pytest.raises(NonFiniteError, match=r"input 'data': expected finite values, found 1 NaN/Inf"):
        rx(data=cube)
    # Arrays are accepted like tensors, and give the same scores.
    pixels, _ = _scene()
    detector = RXDetector(input_channels=5, background="batch")
    torch.testing.assert_close(
        detector(data=pixels.numpy())["scores"], detector(data=pixels)["scores"], rtol=0, atol=0
    )


def test_score_to_logit_standardizes_and_learns() -> None:
    head = ScoreToLogit(scale_init=2.0, bias_init=-1.0)
    logits = head(scores=torch.tensor([1.0, 3.0]).reshape(1, 1, 2, 1))["logits"]
    assert logits.flatten().tolist() == pytest.approx([0.0, 2.0])  # scores / mean = [0.5, 1.5]
    assert sorted(dict(head.named_parameters())) == ["bias", "scale"]


def test_nodes_are_registered() -> None:
    for name, cls in {
        "RXDetector": RXDetector,
        "ScoreToLogit": ScoreToLogit,
        "AnomalyBCELoss": AnomalyBCELoss,
        "AUROC": AUROC,
    }.items():
        assert get_node_class(name) is cls

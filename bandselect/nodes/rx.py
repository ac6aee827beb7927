"""Global Reed–Xiaoli (RX) anomaly detector as a pipeline node.

Design note: RX behind a SoftChannelSelector
--------------------------------------------
A :class:`~bandselect.selectors.SoftChannelSelector` feeds RX with ``w ∘ x`` (its ``selected`` port).
The background statistics of that input are ``w ∘ μ`` and ``W Σ W`` (``W = diag(w)``), so they change
whenever the selector's weights change. Statistics fitted once at initialisation would then describe an
input that no longer exists, and the gradient reaching the selector would reward drifting away from them
rather than separating anomalies. Two consistent choices are offered:

``background="fitted"`` (default)
    Classical global RX: mean and covariance are fitted once over the training data by the
    :class:`~bandselect.training.StatisticalTrainer` (``statistics_request()`` on port ``data``) and kept as
    buffers (``frozen=True``) or trained (``frozen=False``). Right when the upstream node is fixed, e.g. RX
    on a hard selection, and for scoring new scenes with a known background.

``background="batch"``
    The background mean and covariance are those of the current batch's pixels (pooled over the batch),
    recomputed on every forward. They are therefore always the statistics of ``w ∘ x`` for the *current*
    ``w`` and are differentiable with respect to it, which is what gradient training of an upstream
    selector needs; with whole images per batch this is exactly the textbook (per-scene) RX. Nothing is
    fitted: ``statistics_request()`` returns None and ``requires_initial_fit`` is False.

``background="batch_negatives"``
    As ``"batch"``, but the background statistics come from the batch's pixels labelled negative (the
    ``mask`` port must be connected): known targets are kept out of the background, as in the
    evaluation's RX (:func:`bandselect.evaluation.metrics.rx_auroc` with ``background = train &
    ~mask``). For rare anomalies it hardly differs from ``"batch"``; for one class against the rest,
    where the class is a third of the scene, the all-pixel covariance is mostly the class itself and RX
    would be trained on a different problem than the one it is judged on. Every pixel is scored.

How soft weights act on RX. With a ridge ``λ I`` the RX score of ``z = w ∘ x`` is
``(x − μ)ᵀ (Σ + λ W⁻²)⁻¹ (x − μ)`` in raw coordinates: a channel with weight ``w_c`` is seen through
additional noise of variance ``λ / w_c²``. A weight near 0 removes the channel, a hard 0/1 weighting gives
exactly RX on the selected channels, and soft weights interpolate smoothly in between. The ridge is
relative, ``λ = eps · trace(Σ_z) / C``, so it does not depend on the data's units.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from bandselect.errors import LabelError, NonFiniteError, NotFittedError, ShapeError
from bandselect.nodes.losses import as_mask, as_valid, valid_port
from bandselect.nodes.ports import sized_ports
from bandselect.pipeline.node import Node, PortSpec, StatisticsRequest
from bandselect.pipeline.registry import register_node
from bandselect.validation import check_bool, check_choice, check_float, check_int, validate_cube

Background = Literal["fitted", "batch", "batch_negatives"]
BACKGROUNDS = ("fitted", "batch", "batch_negatives")
#: Background modes recomputed from each batch (nothing fitted).
BATCH_BACKGROUNDS = ("batch", "batch_negatives")


def mahalanobis_scores(
    pixels: torch.Tensor, mean: torch.Tensor, covariance: torch.Tensor, *, eps: float
) -> torch.Tensor:
    """Squared Mahalanobis distance of each row of ``pixels`` to ``(mean, covariance)``.

    Parameters
    ----------
    pixels
        ``(N, C)`` values.
    mean, covariance
        ``(C,)`` and ``(C, C)`` background statistics.
    eps
        Relative ridge: ``eps · trace(covariance) / C`` is added to the diagonal.

    Returns
    -------
    torch.Tensor
        ``(N,)`` distances, ≥ 0.

    Examples
    --------
    >>> import torch
    >>> mahalanobis_scores(torch.tensor([[2.0, 0.0]]), torch.zeros(2), torch.eye(2), eps=0.0)
    tensor([4.])
    """
    channels = covariance.shape[-1]
    # Solve in float64: neighbouring bands are nearly collinear, so covariances are ill-conditioned.
    cov64 = covariance.double()
    cov64 = 0.5 * (cov64 + cov64.T)
    ridge = eps * torch.diagonal(cov64).sum().clamp_min(torch.finfo(torch.float64).tiny) / channels
    cov64 = cov64 + ridge * torch.eye(channels, dtype=cov64.dtype, device=cov64.device)
    centred = pixels.double() - mean.double()
    factor, info = torch.linalg.cholesky_ex(cov64)
    if int(info.item()) != 0:
        raise NonFiniteError(
            "RX background covariance is not positive definite",
            expected="a positive definite covariance after the ridge",
            found=f"Cholesky failure at column {int(info.item())}",
            fix="increase eps (the relative ridge) or check the input for constant or non-finite bands",
        )
    solved = torch.cholesky_solve(centred.T, factor)
    return (centred * solved.T).sum(dim=1).to(pixels.dtype)


@register_node
class RXDetector(Node):
    """Global Reed–Xiaoli anomaly detector: Mahalanobis distance of each pixel to the background.

    See the module docstring for how it behaves behind a SoftChannelSelector and which ``background``
    mode to use when training the selector by gradient descent.

    Parameters
    ----------
    input_channels
        Number of channels ``C`` of the ``data`` port.
    eps
        Relative ridge added to the covariance diagonal: ``eps · trace(Σ) / C``. Keeps singular covariances
        (collinear bands, zero-weighted channels) invertible.
    frozen
        ``background="fitted"`` only: True keeps mean and covariance as buffers; False makes them trainable
        parameters (the ``state_dict`` keys are the same).
    background
        ``"fitted"``: statistics fitted at initialisation; ``"batch"``: statistics of each batch;
        ``"batch_negatives"``: statistics of each batch's negative pixels (needs ``mask``).

    Shape
    -----
    - data: ``(B, H, W, C)`` float32, ``C = input_channels`` (checked when a pipeline connects it)
    - mask: ``(B, H, W, 1)`` bool, optional; used by ``background="batch_negatives"`` only
    - valid: ``(B, H, W, 1)`` bool, optional; a batch background is estimated on these pixels only
    - scores: ``(B, H, W, 1)`` float32, squared Mahalanobis distance (≥ 0)

    Examples
    --------
    >>> import torch
    >>> from bandselect.nodes import RXDetector
    >>> rx = RXDetector(input_channels=2, background="batch")
    >>> cube = torch.zeros(1, 4, 4, 2)
    >>> cube[..., 0] = torch.arange(16.0).reshape(4, 4) % 3
    >>> cube[0, 0, 0, 1] = 5.0  # the anomaly
    >>> scores = rx(data=cube)["scores"]
    >>> scores.shape, bool(scores[0, 0, 0, 0] == scores.max())
    (torch.Size([1, 4, 4, 1]), True)
    """

    INPUT_PORTS = (
        PortSpec("data", torch.float32, ("B", "H", "W", "C"), "Cube to score"),
        PortSpec(
            "mask",
            torch.bool,
            ("B", "H", "W", 1),
            "Labels, True = target (background='batch_negatives' leaves them out of the background)",
            optional=True,
        ),
        valid_port("the batch background"),
    )
    OUTPUT_PORTS = (
        PortSpec("scores", torch.float32, ("B", "H", "W", 1), "Squared Mahalanobis distance per pixel"),
    )

    def __init__(
        self,
        input_channels: int,
        eps: float = 1e-3,
        frozen: bool = True,
        background: Background = "fitted",
    ) -> None:
        owner = type(self).__name__
        input_channels = check_int(owner, "input_channels", input_channels, minimum=1)
        eps = check_float(owner, "eps", eps, minimum=0.0)
        frozen = check_bool(owner, "frozen", frozen)
        background = check_choice(owner, "background", background, BACKGROUNDS)  # type: ignore[assignment]
        # Only fitted backgrounds need the StatisticalTrainer; set before Node.__init__ so the
        # `_initialized` buffer exists exactly when it is needed (stable state_dict keys per config).
        self.requires_initial_fit = background == "fitted"
        super().__init__(input_channels=input_channels, eps=eps, frozen=frozen, background=background)
        self.input_channels = input_channels
        self.eps = eps
        self.background = background
        # This instance's channel count in its ports: a pipeline checks it when connecting.
        self.INPUT_PORTS = sized_ports(type(self).INPUT_PORTS, C=input_channels)
        mean = torch.zeros(input_channels)
        covariance = torch.eye(input_channels)
        if frozen or background in BATCH_BACKGROUNDS:
            self.register_buffer("mean", mean)
            self.register_buffer("covariance", covariance)
        else:
            self.mean = nn.Parameter(mean)
            self.covariance = nn.Parameter(covariance)

    # -- statistical initialisation --------------------------------------------------------------
    def statistics_request(self) -> StatisticsRequest | None:
        """Port ``data`` feeds mean and covariance; None in the batch modes (nothing to fit)."""
        if self.background in BATCH_BACKGROUNDS:
            return None
        return StatisticsRequest(cube_port="data")

    def fit_from_statistics(self, stats: Any, *, wavelengths: Any = None) -> None:
        """Set the background mean and covariance from :class:`~bandselect.stats.BandStatistics`.

        Parameters
        ----------
        stats
            Statistics of the ``data`` port over the training data (``stats.mean``, ``stats.covariance``).
        wavelengths
            Unused; accepted for the common interface.
        """
        mean = torch.as_tensor(stats.mean, dtype=torch.float32)
        covariance = torch.as_tensor(stats.covariance, dtype=torch.float32)
        if mean.shape != (self.input_channels,) or covariance.shape != (self.input_channels,) * 2:
            raise ShapeError(
                "RXDetector statistics have the wrong number of bands",
                expected=f"{self.input_channels} bands",
                found=f"mean {tuple(mean.shape)}, covariance {tuple(covariance.shape)}",
                fix=f"set input_channels={mean.shape[-1]} or feed the port with the matching cube",
            )
        if not (torch.isfinite(mean).all() and torch.isfinite(covariance).all()):
            raise NonFiniteError(
                "RXDetector statistics contain NaN or Inf",
                expected="finite mean and covariance",
                found="non-finite values",
                fix="mask non-finite pixels before computing statistics",
            )
        with torch.no_grad():
            self.mean.copy_(mean)
            self.covariance.copy_(covariance)
        self._mark_initialized()

    @property
    def reads_valid(self) -> bool:
        """Whether the ``valid`` input changes the output: only a batch background reads it (a fitted
        one comes from statistics that already leave ignored pixels out)."""
        return self.background in BATCH_BACKGROUNDS

    # -- forward ---------------------------------------------------------------------------------
    def _batch_background(
        self, pixels: torch.Tensor, data: torch.Tensor, mask: Any, valid: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and covariance of the batch's (valid) pixels (its negatives with ``"batch_negatives"``)."""
        reference = pixels
        kept = as_valid(valid, data[..., :1], node="RXDetector")
        if kept is not None:
            reference = pixels[kept.reshape(-1)]
        if self.background == "batch_negatives":
            if mask is None:
                raise LabelError(
                    "RXDetector(background='batch_negatives') needs the label mask",
                    expected="mask (B, H, W, 1) bool connected to rx.mask",
                    found="no mask",
                    fix="connect data.mask to the detector's mask port, or use background='batch'",
                )
            negative = ~as_mask(mask, data[..., :1], node="RXDetector").reshape(-1)
            if kept is not None:
                negative = negative & kept.reshape(-1)
            reference = pixels[negative]
        if reference.shape[0] < 2:
            raise ShapeError(
                f"RXDetector(background={self.background!r}) needs at least two background pixels per batch",
                expected=">= 2 pixels",
                found=reference.shape[0],
                fix="feed larger patches or use background='fitted'",
            )
        # float64: behind a selector the channels' scales differ by many orders of magnitude (weights
        # near 0 beside weights near 1), which a float32 sum of squares would round away.
        reference = reference.double()
        mean = reference.mean(dim=0)
        centred = reference - mean
        return mean, centred.T @ centred / (reference.shape[0] - 1)

    def forward(self, data: torch.Tensor, mask: Any = None, valid: Any = None) -> dict[str, torch.Tensor]:
        """Score every pixel; see the class docstring for shapes (``valid``: a batch background leaves
        the ignored pixels out; they are scored too).

        Raises
        ------
        LabelError
            ``background="batch_negatives"`` without a mask.
        ShapeError
            A batch with fewer than two background pixels.
        """
        data = validate_cube(
            data,
            name="data",
            n_channels=self.input_channels,
            fix_channels=f"pass a (B, H, W, {self.input_channels}) cube, or build the detector with "
            "input_channels set to the cube's channel count",
        )
        batch, height, width, channels = data.shape
        pixels = data.reshape(-1, channels)
        if self.background in BATCH_BACKGROUNDS:
            mean, covariance = self._batch_background(pixels, data, mask, valid)
        else:
            if not self.is_initialized:
                raise NotFittedError(
                    "RXDetector used before its background statistics were fitted",
                    expected="an initialised detector",
                    found="no statistics",
                    fix="run StatisticalTrainer(pipeline=..., datamodule=...).fit() first, "
                    "or use background='batch'",
                )
            mean, covariance = self.mean, self.covariance
        scores = mahalanobis_scores(pixels, mean, covariance, eps=self.eps)
        return {"scores": scores.to(data.dtype).reshape(batch, height, width, 1)}

"""Learnable channel selection: SoftChannelSelector (relaxed top-k / Gumbel-Softmax) and TopKIndices."""

from __future__ import annotations

from typing import Any, Literal

import torch

from bandselect.errors import ConfigError, NonFiniteError, NotFittedError, ShapeError
from bandselect.nodes.ports import sized_ports
from bandselect.pipeline.node import Node, PortSpec, StatisticsRequest
from bandselect.pipeline.registry import register_node
from bandselect.selection import BandSelection, false_colour_order
from bandselect.selectors.annealing import AnnealedSelector, check_schedule, variance_logits
from bandselect.selectors.relaxations import (
    DEFAULT_RELAXATION,
    RELAXATIONS,
    Relaxation,
    relax,
    top_k_mask,
)
from bandselect.validation import (
    as_tensor,
    check_bool,
    check_choice,
    check_float,
    check_int,
    validate_cube,
    validate_node_wavelengths,
)

__all__ = ["INIT_METHODS", "SoftChannelSelector", "TopKIndices", "top_k_mask"]

INIT_METHODS = ("uniform", "variance")


@register_node
class SoftChannelSelector(AnnealedSelector):
    """Differentiable channel selector: a relaxed top-``n_select`` mask with temperature annealing.

    Training mode: ``weights = relaxation(channel_logits + g, T)`` with ``g`` i.i.d. Gumbel(0, 1) noise,
    one draw per channel per forward call, shared by the whole batch (a selection is a property of the
    data set, not of a pixel). Evaluation mode: no noise, ``relaxation(channel_logits, T)``; with
    ``hard=True`` the top-``n_select`` channels get 1.0 and the rest 0.0 (ties to the lower index). The
    weights always sum to ``n_select``; ``selected = data * weights``.

    Relaxations (see :mod:`bandselect.selectors.relaxations`):

    - ``"subset"`` (default): the relaxed top-k ``w_c = σ((s_c − τ) / T)``, ``τ`` such that the weights
      sum to ``n_select`` (the projection onto ``{0 ≤ w ≤ 1, Σ w = n_select}``). No weight exceeds 1.0;
      as ``T → 0`` it tends to the hard top-``n_select`` mask, 1.0 on each of ``n_select`` channels (the
      seed's promise "low temperature → more discrete, closer to hard selection").
    - ``"softmax"``: the seed's ``n_select · softmax((channel_logits + g) / T)``. Low temperature → the
      whole budget ``n_select`` on ONE channel, so with the seed's schedule (floor 0.1) the detector is
      trained on one band.

    What the default guarantees at the seed's floor ``T = 0.1`` (proved on pavia after the seed's 50
    epochs from the variance start by ``tests/training/test_seed_settings.py``): the noise-free weights (the
    relaxation of the trained logits) are >= 0.9 on each of ``n_select`` distinct channels. A training
    draw adds Gumbel noise first, so it is a Gumbel-top-k *sample* of ``n_select`` distinct channels:
    never more than 1.0 on a channel, and >= 0.9 on each of its ``n_select`` largest unless its
    ``n_select``-th and ``(n_select + 1)``-th perturbed logits are within about ``2 T ln 9 ≈ 0.44``,
    where that near-tie splits one unit of mass (e.g. 0.68 / 0.32). On pavia 179 of 200 draws are >= 0.9
    on each of their top 3, while the seed's softmax puts more than 1.5 on one channel in all 200.

    Why ``"subset"`` is the default: the numbers are in ``docs/learnable.md`` (measured by
    ``benchmarks/bench_learnable.py``).

    With ``straight_through=True`` training forwards the hard top-``n_select`` mask of the noisy logits
    (what the detector will see after training) while the gradient is the relaxation's.

    ``channel_logits`` is a buffer (saved, not trained) until :meth:`unfreeze` turns it into an
    ``nn.Parameter``; :meth:`freeze` turns it back. The ``state_dict`` key is ``channel_logits`` either way.
    The current temperature is a buffer too (``current_temperature``), so a resumed run continues the
    annealing schedule; read or set it as the float attribute ``temperature``.

    Parameters
    ----------
    n_select : int
        Number of channels to select (the selection budget; the weights sum to it),
        ``1 <= n_select <= input_channels``.
    input_channels : int
        Total number of input channels ``C``.
    init_method : {"uniform", "variance"}, default "uniform"
        ``"uniform"``: logits are zeros, no initialisation needed. ``"variance"``:
        ``channel_logits = log(variance per channel + eps)`` over every pixel of the training data,
        computed by :class:`~bandselect.training.StatisticalTrainer` (or :meth:`fit`); the node refuses
        to run before that.
    temperature_init : float, default 5.0
        Initial temperature (> 0).
    temperature_min : float, default 0.1
        Annealing floor (> 0, at most ``temperature_init``).
    temperature_decay : float, default 0.9
        Temperature decay factor per epoch, in (0, 1].
    hard : bool, default False
        If True, evaluation mode outputs the top-``n_select`` mask instead of soft weights.
    eps : float, default 1e-6
        Numerical stability constant (variance floor for the log, Gumbel uniform clamp).
    relaxation : {"subset", "softmax"}, default "subset"
        The relaxation of the top-``n_select`` mask (see above).
    straight_through : bool, default False
        Training forwards the hard mask of the noisy logits; gradients of the relaxation.
    seed : int or None, default None
        Seed of the node's own ``torch.Generator`` for the Gumbel noise: two nodes built with the same
        seed draw the same noise sequence. ``None`` draws from torch's global generator (reproducible
        with ``torch.manual_seed``). The generator's position is not part of the ``state_dict`` (the
        gradient trainer's checkpoints save it); call :meth:`reseed` to restart the sequence.

    Shape
    -----
    - data: ``(B, H, W, C)`` float32
    - selected: ``(B, H, W, C)`` float32
    - weights: ``(C,)`` float32

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import SoftChannelSelector
    >>> selector = SoftChannelSelector(n_select=3, input_channels=8, seed=0)
    >>> out = selector.forward(data=torch.rand(2, 4, 4, 8))
    >>> tuple(out["selected"].shape), round(float(out["weights"].sum()), 4)
    ((2, 4, 4, 8), 3.0)
    >>> selector.update_temperature(epoch=1)
    4.5
    >>> _ = selector.eval()
    >>> int(selector.get_selection_weights(hard=True).sum())
    3

    At a low temperature the default relaxation is (nearly) the hard top-3 mask:

    >>> with torch.no_grad():
    ...     _ = selector.channel_logits.copy_(torch.tensor([0.0, 4.0, 0.0, 3.0, 0.0, 2.0, 0.0, 0.0]))
    >>> selector.temperature = 0.1
    >>> selector.get_selection_weights().round(decimals=3).tolist()
    [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    """

    LOGITS = "channel_logits"
    INPUT_PORTS = (PortSpec("data", torch.float32, ("B", "H", "W", "C"), "Input hyperspectral cube"),)
    OUTPUT_PORTS = (
        PortSpec(
            "selected", torch.float32, ("B", "H", "W", "C"), "Channel-weighted output (same shape as input)"
        ),
        PortSpec("weights", torch.float32, ("C",), "Current channel selection weights (for regularization)"),
    )

    def __init__(
        self,
        n_select: int,
        input_channels: int,
        init_method: Literal["uniform", "variance"] = "uniform",
        temperature_init: float = 5.0,
        temperature_min: float = 0.1,
        temperature_decay: float = 0.9,
        hard: bool = False,
        eps: float = 1e-6,
        *,
        relaxation: Relaxation = DEFAULT_RELAXATION,
        straight_through: bool = False,
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        input_channels = check_int(owner, "input_channels", input_channels, minimum=1)
        n_select = check_int(owner, "n_select", n_select, minimum=1, maximum=input_channels)
        init_method = check_choice(owner, "init_method", init_method, INIT_METHODS)  # type: ignore[assignment]
        temperature_init, temperature_min, temperature_decay = check_schedule(
            owner, temperature_init, temperature_min, temperature_decay
        )
        hard = check_bool(owner, "hard", hard)
        eps = check_float(owner, "eps", eps, minimum=0.0, strict_minimum=True)
        relaxation = check_choice(owner, "relaxation", relaxation, RELAXATIONS)  # type: ignore[assignment]
        straight_through = check_bool(owner, "straight_through", straight_through)
        seed = self._check_seed(owner, seed)
        # Only variance initialisation needs the StatisticalTrainer; set before Node.__init__ so the
        # `_initialized` buffer exists exactly when it is needed (stable state_dict keys per config).
        self.requires_initial_fit = init_method == "variance"
        super().__init__(
            n_select=n_select,
            input_channels=input_channels,
            init_method=init_method,
            temperature_init=temperature_init,
            temperature_min=temperature_min,
            temperature_decay=temperature_decay,
            hard=hard,
            eps=eps,
            relaxation=relaxation,
            straight_through=straight_through,
            seed=seed,
        )
        self.n_select = n_select
        self.input_channels = input_channels
        self.init_method = init_method
        self.hard = hard
        self.relaxation: Relaxation = relaxation
        self.straight_through = straight_through
        # This instance's channel count in its ports: a pipeline checks it when connecting.
        self.INPUT_PORTS = sized_ports(type(self).INPUT_PORTS, C=input_channels)
        self.OUTPUT_PORTS = sized_ports(type(self).OUTPUT_PORTS, C=input_channels)
        self._setup_annealing(
            torch.zeros(input_channels),
            temperature_init=temperature_init,
            temperature_min=temperature_min,
            temperature_decay=temperature_decay,
            eps=eps,
            seed=seed,
        )

    # -- statistical initialisation ---------------------------------------------------------------
    def statistics_request(self) -> StatisticsRequest | None:
        """Variance initialisation needs per-channel moments of the ``data`` input; uniform needs none."""
        if self.init_method != "variance":
            return None
        return StatisticsRequest(cube_port="data")

    def fit_from_statistics(self, stats: Any, *, wavelengths: Any = None) -> None:
        """Set ``channel_logits = log(variance + eps)`` from data-set-wide band statistics.

        Parameters
        ----------
        stats : bandselect.stats.BandStatistics
            Statistics merged over every pixel of the training data.
        wavelengths
            Unused (accepted for the common initialisation interface).
        """
        if self.init_method != "variance":
            raise ConfigError(
                f"{type(self).__name__}.fit_from_statistics",
                expected="init_method='variance'",
                found=f"init_method={self.init_method!r}, which needs no statistics",
                fix="build the selector with init_method='variance' to initialise it from data",
            )
        logits = variance_logits(stats, self.input_channels, self.eps, type(self).__name__)
        with torch.no_grad():
            self.channel_logits.copy_(logits.to(self.channel_logits.device))
        self._mark_initialized()

    def fit(self, data: Any) -> SoftChannelSelector:
        """Variance initialisation directly from a ``(B, H, W, C)`` tensor or array (all pixels).

        Uses the same code path as :class:`~bandselect.training.StatisticalTrainer`.
        """
        from bandselect.stats import statistics_of

        cube = validate_cube(data, name="data", n_channels=self.input_channels)
        self.fit_from_statistics(statistics_of(cube.detach().cpu().numpy(), n_bins=None))
        return self

    # -- selection ---------------------------------------------------------------------------------
    def _check_initialized(self) -> None:
        if not self.is_initialized:
            raise NotFittedError(
                f"{type(self).__name__} with init_method='variance'",
                expected="a statistical initialisation before use",
                found="channel_logits not initialised",
                fix="run StatisticalTrainer(pipeline=..., datamodule=...).fit() or selector.fit(cube) first",
            )

    def _relax(self, scores: torch.Tensor) -> torch.Tensor:
        return relax(scores, self.n_select, self.temperature, self.relaxation)

    def get_selection_weights(self, hard: bool = False) -> torch.Tensor:
        """Deterministic selection weights (no Gumbel noise), detached.

        Parameters
        ----------
        hard : bool, default False
            False: the relaxation of ``channel_logits`` at the current temperature; True: 1.0 on the
            top-``n_select`` channels (ties to the lower index), 0.0 elsewhere.

        Returns
        -------
        torch.Tensor
            ``(C,)`` float32, summing to ``n_select``.
        """
        self._check_initialized()
        logits = self.channel_logits.detach()
        if hard:
            return top_k_mask(logits, self.n_select)
        return self._relax(logits)

    def selection(self, wavelengths_nm: Any) -> BandSelection:
        """The hard selection: the ``n_select`` channels of largest logit.

        Picks are in decreasing logit (ties to the lower index, :class:`TopKIndices`' rule; both
        relaxations order the channels as their logits); the output order is decreasing wavelength, the
        false-colour convention, so a composite of the first three shows the longest wavelength as red.
        The scores are the soft weights (``weight``) and the logits.

        Raises
        ------
        NotFittedError
            ``init_method="variance"`` before the statistical initialisation.
        WavelengthError
            Wavelengths missing or not ``input_channels`` of them.
        """
        weights = self.get_selection_weights(hard=False).cpu().to(torch.float64)
        wl = validate_node_wavelengths(wavelengths_nm, self.input_channels)
        logits = self.channel_logits.detach().cpu().double()
        picks = torch.sort(-logits, stable=True).indices[: self.n_select].tolist()
        return BandSelection.create(
            picks,
            wl,
            selector_type=type(self).__name__,
            selector_config=self.config,
            output_indices=false_colour_order(picks, wl),
            scores={"weight": weights.numpy(), "logit": logits.numpy()},
            strategy="soft_channel_selector",
        )

    def _weights(self) -> torch.Tensor:
        logits = self.channel_logits
        if self.training:
            noisy = logits + self._gumbel_noise((self.input_channels,)).to(logits.device)
            soft = self._relax(noisy)
            if not self.straight_through:
                return soft
            # Straight-through: the value is the hard mask, the gradient the relaxation's.
            return top_k_mask(noisy, self.n_select) + soft - soft.detach()
        if self.hard:
            return top_k_mask(logits, self.n_select)
        return self._relax(logits)

    def forward(self, data: Any) -> dict[str, torch.Tensor]:
        """Weight the channels of ``data``.

        Returns
        -------
        dict
            ``selected`` ``(B, H, W, C)`` = ``data * weights``; ``weights`` ``(C,)``.
        """
        cube = validate_cube(
            data,
            name="data",
            n_channels=self.input_channels,
            fix_channels=f"pass a cube with {self.input_channels} channels or set input_channels accordingly",
        )
        self._check_initialized()
        weights = self._weights()
        return {"selected": cube * weights.to(cube.dtype), "weights": weights}


@register_node
class TopKIndices(Node):
    """Indices of the ``k`` largest channel weights, largest first; ties go to the lower index.

    Parameters
    ----------
    k : int
        Number of top indices to return (``>= 1``; more than the number of weights is an error).

    Shape
    -----
    - weights: ``(C,)`` float32
    - indices: ``(k,)`` int64

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import TopKIndices
    >>> TopKIndices(k=2).forward(weights=torch.tensor([0.1, 0.7, 0.7, 0.2]))["indices"]
    tensor([1, 2])
    """

    INPUT_PORTS = (PortSpec("weights", torch.float32, ("C",), "Channel selection weights"),)
    OUTPUT_PORTS = (PortSpec("indices", torch.int64, ("k",), "Top-k channel indices (sorted by weight)"),)

    def __init__(self, k: int) -> None:
        k = check_int(type(self).__name__, "k", k, minimum=1)
        super().__init__(k=k)
        self.k = k

    def forward(self, weights: Any) -> dict[str, torch.Tensor]:
        """Return ``{"indices": (k,) int64}``, the channels sorted by decreasing weight."""
        tensor = as_tensor(weights, "weights")
        if tensor.ndim != 1:
            raise ShapeError(
                "input 'weights'",
                expected="a 1-D (C,) tensor of channel weights",
                found=f"shape {tuple(tensor.shape)}",
                fix="connect a selector's weights port (e.g. selector.weights)",
            )
        if self.k > tensor.numel():
            raise ShapeError(
                "TopKIndices input 'weights'",
                expected=f"at least k={self.k} weights",
                found=f"{tensor.numel()} weights",
                fix=f"choose k <= {tensor.numel()}",
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise NonFiniteError(
                "input 'weights'",
                expected="finite weights",
                found=f"{int((~torch.isfinite(tensor)).sum())} NaN/Inf values",
                fix="check the upstream selector for a diverged training run",
            )
        order = torch.sort(-(tensor.detach().to(torch.float64)), stable=True).indices[: self.k]
        return {"indices": order.to(torch.int64)}

"""Learnable channel selection: SoftChannelSelector (Gumbel-Softmax) and TopKIndices."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from bandselect.errors import ConfigError, NonFiniteError, NotFittedError, ShapeError
from bandselect.pipeline.node import Node, PortSpec, StatisticsRequest
from bandselect.pipeline.registry import register_node
from bandselect.selection import BandSelection, false_colour_order
from bandselect.validation import (
    as_tensor,
    check_bool,
    check_choice,
    check_float,
    check_int,
    validate_cube,
    validate_node_wavelengths,
)

INIT_METHODS = ("uniform", "variance")


def top_k_mask(weights: torch.Tensor, k: int) -> torch.Tensor:
    """1.0 on the ``k`` largest entries of a 1-D tensor (ties to the lower index), 0.0 elsewhere."""
    order = torch.sort(-weights.detach(), stable=True).indices[:k]
    mask = torch.zeros_like(weights)
    mask[order] = 1.0
    return mask


@register_node
class SoftChannelSelector(Node):
    """Differentiable channel selector using Gumbel-Softmax with temperature annealing.

    Training mode: ``weights = n_select · softmax((channel_logits + g) / T)`` with ``g`` i.i.d.
    Gumbel(0, 1) noise, one draw per channel per forward call, shared by the whole batch (a selection is
    a property of the data set, not of a pixel). Evaluation mode: no noise; with ``hard=True`` the
    top-``n_select`` channels get 1.0 and the rest 0.0 (ties to the lower index). The weights always sum
    to ``n_select``; ``selected = data * weights``.

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
        Initial Gumbel-Softmax temperature (> 0).
    temperature_min : float, default 0.1
        Annealing floor (> 0, at most ``temperature_init``).
    temperature_decay : float, default 0.9
        Temperature decay factor per epoch, in (0, 1].
    hard : bool, default False
        If True, evaluation mode outputs the top-``n_select`` mask instead of soft weights.
    eps : float, default 1e-6
        Numerical stability constant (variance floor for the log, Gumbel uniform clamp).
    seed : int or None, default None
        Seed of the node's own ``torch.Generator`` for the Gumbel noise: two nodes built with the same
        seed draw the same noise sequence. ``None`` draws from torch's global generator (reproducible
        with ``torch.manual_seed``). The generator's position is not part of the ``state_dict``; call
        :meth:`reseed` to restart the sequence.

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
    """

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
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        input_channels = check_int(owner, "input_channels", input_channels, minimum=1)
        n_select = check_int(owner, "n_select", n_select, minimum=1, maximum=input_channels)
        init_method = check_choice(owner, "init_method", init_method, INIT_METHODS)  # type: ignore[assignment]
        temperature_init = check_float(
            owner, "temperature_init", temperature_init, minimum=0.0, strict_minimum=True
        )
        temperature_min = check_float(
            owner,
            "temperature_min",
            temperature_min,
            minimum=0.0,
            maximum=temperature_init,
            strict_minimum=True,
        )
        temperature_decay = check_float(
            owner, "temperature_decay", temperature_decay, minimum=0.0, maximum=1.0, strict_minimum=True
        )
        hard = check_bool(owner, "hard", hard)
        eps = check_float(owner, "eps", eps, minimum=0.0, strict_minimum=True)
        if seed is not None:
            seed = check_int(owner, "seed", seed, minimum=0)
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
            seed=seed,
        )
        self.n_select = n_select
        self.input_channels = input_channels
        self.init_method = init_method
        self.temperature_init = temperature_init
        self.temperature_min = temperature_min
        self.temperature_decay = temperature_decay
        self.hard = hard
        self.eps = eps
        self.seed = seed
        self._generator: torch.Generator | None = None
        self.reseed(seed)
        self.register_buffer("channel_logits", torch.zeros(input_channels, dtype=torch.float32))
        self.register_buffer("current_temperature", torch.tensor(temperature_init, dtype=torch.float32))

    # -- temperature -----------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """The current Gumbel-Softmax temperature (a float; stored in the ``current_temperature`` buffer)."""
        return float(self._buffers["current_temperature"].item())

    @temperature.setter
    def temperature(self, value: float) -> None:
        value = check_float(type(self).__name__, "temperature", value, minimum=0.0, strict_minimum=True)
        self._buffers["current_temperature"].fill_(value)

    def temperature_at(self, epoch: int) -> float:
        """The temperature at ``epoch``: ``max(temperature_min, temperature_init · decay ** epoch)``.

        Pure: the node's temperature is not changed (the trainer asks it, e.g., when the floor is reached).
        """
        epoch = check_int(type(self).__name__, "epoch", epoch, minimum=0)
        return max(self.temperature_min, self.temperature_init * self.temperature_decay**epoch)

    def update_temperature(self, epoch: int) -> float:
        """Anneal: ``T = max(temperature_min, temperature_init · temperature_decay ** epoch)``.

        Parameters
        ----------
        epoch : int
            Zero-based epoch number (``epoch=0`` gives ``temperature_init``).

        Returns
        -------
        float
            The new temperature.
        """
        value = self.temperature_at(epoch)
        self.temperature = value
        return value

    # -- randomness --------------------------------------------------------------------------------
    def reseed(self, seed: int | None) -> None:
        """Restart the Gumbel noise sequence from ``seed`` (``None``: use torch's global generator)."""
        if seed is None:
            self._generator = None
        else:
            self._generator = torch.Generator(device="cpu")
            self._generator.manual_seed(int(seed))

    def _gumbel_noise(self) -> torch.Tensor:
        uniform = torch.rand(self.input_channels, generator=self._generator, dtype=torch.float32)
        uniform = uniform.clamp(self.eps, 1.0 - self.eps)
        return -torch.log(-torch.log(uniform))

    # -- trainability ------------------------------------------------------------------------------
    @property
    def is_trainable(self) -> bool:
        """Whether ``channel_logits`` is currently an ``nn.Parameter``."""
        return "channel_logits" in self._parameters

    def unfreeze(self) -> None:
        """Turn the ``channel_logits`` buffer into a trainable ``nn.Parameter`` (same state_dict key)."""
        if self.is_trainable:
            return
        logits = self._buffers.pop("channel_logits")
        self.channel_logits = nn.Parameter(logits.detach().clone())

    def freeze(self) -> None:
        """Turn a trainable ``channel_logits`` back into a buffer (same state_dict key)."""
        if not self.is_trainable:
            return
        logits = self._parameters.pop("channel_logits")
        self.register_buffer("channel_logits", logits.detach().clone())

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
        variance = np.asarray(stats.variance, dtype=np.float64)
        if variance.shape != (self.input_channels,):
            raise ShapeError(
                f"{type(self).__name__} statistics",
                expected=f"variance of {self.input_channels} channels",
                found=f"shape {variance.shape}",
                fix="compute the statistics on the cube this selector receives",
            )
        logits = torch.from_numpy(np.log(np.maximum(variance, 0.0) + self.eps)).to(torch.float32)
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

    def get_selection_weights(self, hard: bool = False) -> torch.Tensor:
        """Deterministic selection weights (no Gumbel noise), detached.

        Parameters
        ----------
        hard : bool, default False
            False: ``n_select · softmax(channel_logits / T)``; True: 1.0 on the top-``n_select`` channels
            (ties to the lower index), 0.0 elsewhere.

        Returns
        -------
        torch.Tensor
            ``(C,)`` float32, summing to ``n_select``.
        """
        self._check_initialized()
        logits = self.channel_logits.detach()
        if hard:
            return top_k_mask(logits, self.n_select)
        return self.n_select * torch.softmax(logits / self.temperature, dim=0)

    def selection(self, wavelengths_nm: Any) -> BandSelection:
        """The hard selection: the ``n_select`` channels of largest deterministic weight.

        Picks are in decreasing weight (ties to the lower index, :class:`TopKIndices`' rule); the output
        order is decreasing wavelength, the false-colour convention, so a composite of the first three
        shows the longest wavelength as red. The scores are the soft weights (``weight``) and the logits.

        Raises
        ------
        NotFittedError
            ``init_method="variance"`` before the statistical initialisation.
        WavelengthError
            Wavelengths missing or not ``input_channels`` of them.
        """
        weights = self.get_selection_weights(hard=False).cpu().to(torch.float64)
        wl = validate_node_wavelengths(wavelengths_nm, self.input_channels)
        picks = torch.sort(-weights, stable=True).indices[: self.n_select].tolist()
        return BandSelection.create(
            picks,
            wl,
            selector_type=type(self).__name__,
            selector_config=self.config,
            output_indices=false_colour_order(picks, wl),
            scores={"weight": weights.numpy(), "logit": self.channel_logits.detach().cpu().double().numpy()},
            strategy="soft_channel_selector",
        )

    def _weights(self) -> torch.Tensor:
        logits = self.channel_logits
        if self.training:
            noise = self._gumbel_noise().to(logits.device)
            return self.n_select * torch.softmax((logits + noise) / self.temperature, dim=0)
        if self.hard:
            return top_k_mask(logits, self.n_select)
        return self.n_select * torch.softmax(logits / self.temperature, dim=0)

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

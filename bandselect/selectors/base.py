"""BandSelectorBase: the common base of every node that turns a cube into an RGB composite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bandselect.errors import NotFittedError, ShapeError
from bandselect.pipeline.node import Node, PortSpec
from bandselect.selection import BandSelection
from bandselect.validation import validate_cube, validate_node_wavelengths

RGB_ORDER = ("R", "G", "B")

CUBE_PORT = PortSpec("cube", torch.float32, ("B", "H", "W", "C"), "Hyperspectral cube")
# The seed declares wavelengths int32; ours are float nm (sub-nm band centres). Integer wavelengths still
# connect and are accepted (check_ports_compatible allows real dtypes to meet).
WAVELENGTHS_PORT = PortSpec("wavelengths", torch.float32, ("C",), "Wavelength array (nm)")
RGB_PORT = PortSpec(
    "rgb_image", torch.float32, ("B", "H", "W", 3), "RGB image (0-1 range, per-sample normalized)"
)
BAND_INFO_PORT = PortSpec("band_info", "dict", (), "Selected band metadata")


class BandSelectorBase(Node):
    """Base class of band selectors that compose a 3-channel RGB image from three bands.

    Subclasses implement ``forward(cube, wavelengths, **kwargs)`` returning ``{"rgb_image", "band_info"}``
    and use :meth:`_compose_rgb` to build the image, as the seed's "Creating Custom Selectors" shows.
    Keyword arguments given to ``__init__`` are recorded as the node's configuration.

    To take part in flows, exports and comparisons a selector also implements
    :meth:`selection` (the :class:`~bandselect.pipeline.node.BandSelector` protocol): the bands it chose
    as one :class:`~bandselect.selection.BandSelection`, without running ``forward``.

    Parameters
    ----------
    **config
        The subclass's constructor arguments (recorded in ``node.config``).

    Shape
    -----
    - cube: ``(B, H, W, C)`` float32
    - wavelengths: ``(C,)`` in nm
    - rgb_image: ``(B, H, W, 3)`` float32 in [0, 1], channels R, G, B
    - band_info: dict

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import BandSelectorBase
    >>> class FirstBands(BandSelectorBase):
    ...     def forward(self, cube, wavelengths, **kwargs):
    ...         cube, wl = self._validate_inputs(cube, wavelengths)
    ...         indices = [2, 1, 0]
    ...         rgb = self._compose_rgb(cube, indices)
    ...         return {"rgb_image": rgb, "band_info": {"strategy": "first", "band_indices": indices}}
    >>> out = FirstBands().forward(cube=torch.rand(1, 4, 4, 5), wavelengths=torch.arange(5.0) * 10 + 400)
    >>> tuple(out["rgb_image"].shape)
    (1, 4, 4, 3)
    """

    INPUT_PORTS = (CUBE_PORT, WAVELENGTHS_PORT)
    OUTPUT_PORTS = (RGB_PORT, BAND_INFO_PORT)

    def forward(self, cube: Any, wavelengths: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Select three bands and compose the RGB image (implemented by subclasses)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement forward(cube, wavelengths) returning "
            "{'rgb_image': ..., 'band_info': ...}"
        )

    def selection(self, wavelengths_nm: Any) -> BandSelection:
        """The bands this selector chose, on the grid ``wavelengths_nm`` (implemented by subclasses).

        Raises
        ------
        NotFittedError
            The subclass does not implement it (or, in subclasses, has not been fitted yet).
        """
        raise NotFittedError(
            f"{type(self).__name__}.selection",
            expected="a selector that reports its bands as a BandSelection",
            found="a custom selector without selection(wavelengths_nm)",
            fix="implement selection() returning bandselect.selection.BandSelection.create(...) to use the "
            "selector in flows, exports and comparisons",
        )

    def _selection(
        self, indices: Sequence[int], wl: np.ndarray, *, strategy: str, **details: Any
    ) -> BandSelection:
        """A :class:`BandSelection` of this node on the validated grid ``wl`` (type and config filled in)."""
        return BandSelection.create(
            indices,
            wl,
            selector_type=type(self).__name__,
            selector_config=self.config,
            strategy=strategy,
            **details,
        )

    # -- helpers for subclasses ------------------------------------------------------------------
    def _validate_inputs(
        self, cube: Any, wavelengths: Any, *, n_channels: int | None = None
    ) -> tuple[torch.Tensor, np.ndarray]:
        """Validate the cube (rank 4, finite) and wavelengths (present, one per band, increasing).

        Returns the cube as a float tensor and the wavelengths as a float64 array.
        """
        tensor = validate_cube(cube, n_channels=n_channels)
        wl = validate_node_wavelengths(wavelengths, tensor.shape[-1])
        return tensor, wl

    @staticmethod
    def _compose_rgb(cube: torch.Tensor, indices: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Stack three bands into an image and min-max normalise each sample and channel into [0, 1].

        Normalisation is per sample and per channel over H and W (the seed's "per-sample normalized");
        a constant channel becomes 0 rather than NaN. No state changes.

        Parameters
        ----------
        cube
            ``(B, H, W, C)`` tensor.
        indices
            Three band indices in R, G, B order.

        Returns
        -------
        torch.Tensor
            ``(B, H, W, 3)`` float32 in [0, 1].
        """
        index = torch.as_tensor(list(indices) if not isinstance(indices, torch.Tensor) else indices)
        index = index.to(device=cube.device, dtype=torch.long).reshape(-1)
        if index.numel() != 3:
            raise ShapeError(
                "_compose_rgb indices",
                expected="three band indices (R, G, B)",
                found=f"{index.numel()} indices",
                fix="pass exactly three band indices",
            )
        channels = cube.shape[-1]
        if bool((index < 0).any()) or bool((index >= channels).any()):
            raise ShapeError(
                "_compose_rgb indices",
                expected=f"indices in [0, {channels - 1}]",
                found=index.tolist(),
                fix="pass band indices of this cube",
            )
        rgb = cube.index_select(-1, index).to(torch.float32)
        low = rgb.amin(dim=(1, 2), keepdim=True)
        high = rgb.amax(dim=(1, 2), keepdim=True)
        span = high - low
        # A constant channel has no contrast: map it to 0 instead of dividing by zero.
        safe = torch.where(span > 0, span, torch.ones_like(span))
        return torch.where(span > 0, (rgb - low) / safe, torch.zeros_like(rgb)).clamp_(0.0, 1.0)

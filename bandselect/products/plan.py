"""What a run exports: the product kinds, where each goes, and whether GeoTIFFs go with them.

Two products are made from a :class:`~bandselect.selection.BandSelection`:

- ``composite``: the RGB composite (``(y, x, rgb)``, the selection's first three output channels); it
  needs a selection of at least three bands.
- ``bands``: the reduced cube of the selected k bands (``(y, x, band)`` with their ``wavelength``
  coordinate, in increasing wavelength); any selection of one band or more.

Each product is a zarr store (one group per acquisition) and, when asked, one GeoTIFF or COG per
acquisition beside it. A plan whose products the pipeline cannot feed (a composite from a one- or
two-band selection) is refused before any work: :func:`planned_band_count` tells from the pipeline how many
bands the selector will pick, where that is known without data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from bandselect import storage
from bandselect.errors import ConfigError, NotFittedError
from bandselect.pipeline.node import BandSelector, Node, WeightedSelector

__all__ = [
    "MIN_BANDS",
    "GeoTiffMode",
    "ProductKind",
    "ProductPlan",
    "check_products",
    "describe_node",
    "planned_band_count",
]

ProductKind = Literal["composite", "bands"]
GeoTiffMode = Literal["none", "tiff", "cog"]
PRODUCT_KINDS: tuple[str, ...] = get_args(ProductKind)
GEOTIFF_MODES: tuple[str, ...] = get_args(GeoTiffMode)

#: The fewest selected bands each product can be made from.
MIN_BANDS: Mapping[str, int] = {"composite": 3, "bands": 1}

#: What the bands of each product are, for messages.
_USES = {"composite": "R, G and B", "bands": "the cube's bands"}


@dataclass(frozen=True)
class ProductPlan:
    """The products of a run: kind → zarr store, in the order asked for, and the GeoTIFF settings.

    Attributes
    ----------
    outputs
        Product kind (``"composite"``, ``"bands"``) → path of its zarr store.
    geotiff
        ``"none"``; ``"tiff"`` (tiled, deflate-compressed GeoTIFF) or ``"cog"`` (Cloud-Optimised GeoTIFF),
        one file per acquisition and product: ``<geotiff_dir>/<kind>/<acquisition id>.tif``.
    geotiff_dir
        Folder of the GeoTIFFs (required unless ``geotiff == "none"``).
    """

    outputs: Mapping[str, str] = field(default_factory=dict)
    geotiff: GeoTiffMode = "none"
    geotiff_dir: str | None = None

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.outputs if kind not in PRODUCT_KINDS]
        if not self.outputs or unknown:
            raise ConfigError(
                "export products",
                expected=f"one or more of {list(PRODUCT_KINDS)}",
                found=f"unknown {unknown}" if unknown else "none",
                fix="set export.products, e.g. [composite] or [composite, bands]",
            )
        if self.geotiff not in GEOTIFF_MODES or (self.geotiff != "none" and not self.geotiff_dir):
            raise ConfigError(
                "export geotiff",
                expected=f"one of {list(GEOTIFF_MODES)}, with a folder unless 'none'",
                found=f"{self.geotiff!r}, folder {self.geotiff_dir!r}",
                fix="set export.geotiff to none, tiff or cog",
            )
        if self.geotiff != "none" and self.geotiff_dir is not None:
            # GeoTIFFs are written to local files (renamed into place), never to a URL taken as a folder.
            storage.local_path(self.geotiff_dir, "export geotiff_dir", "GeoTIFFs are written to local files")
        object.__setattr__(self, "outputs", dict(self.outputs))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The product kinds, in the order asked for."""
        return tuple(self.outputs)

    def geotiff_path(self, kind: str, acquisition_id: str) -> Path | None:
        """Where the GeoTIFF of one acquisition's product goes (``None`` without GeoTIFFs)."""
        if self.geotiff == "none" or self.geotiff_dir is None:
            return None
        folder = storage.local_path(
            self.geotiff_dir, "export geotiff_dir", "GeoTIFFs are written to local files"
        )
        return folder / kind / f"{acquisition_id}.tif"


def check_products(n_bands: int | None, kinds: Sequence[str], *, what: str = "the selection") -> None:
    """Raise :class:`ConfigError` when a product needs more bands than the selection has.

    Parameters
    ----------
    n_bands
        How many bands the selection holds (or will hold); ``None``: not known yet, nothing to check.
    kinds
        The product kinds asked for.
    what
        What the bands come from, for the message (e.g. ``"selector 'selector' (FixedWavelengthSelector)"``).
    """
    if n_bands is None:
        return
    short = [kind for kind in kinds if n_bands < MIN_BANDS[kind]]
    if not short:
        return
    kind = short[0]
    raise ConfigError(
        f"export product {kind!r}",
        expected=f"a selection of at least {MIN_BANDS[kind]} bands ({_USES[kind]})",
        found=f"{what} selects {n_bands} band{'s' if n_bands != 1 else ''}",
        fix="export the selected bands as a k-band cube instead (export.products: [bands]), or select "
        f"{MIN_BANDS[kind]} bands or more",
    )


def planned_band_count(node: Node, wavelengths_nm: np.ndarray | Sequence[float] | None) -> int | None:
    """How many bands ``node`` will select, where the pipeline says so before any data is seen.

    - a learnable selector (:class:`~bandselect.pipeline.node.WeightedSelector`): its ``n_select``;
    - a selector whose choice depends on the wavelengths only (fixed-wavelength selectors): the size of
      its selection on ``wavelengths_nm`` (when known), which also checks its targets against the sensor;
    - a selector with an ``rgb_image`` output port: three (the port's declared channel count);
    - otherwise ``None`` (known once the selector is fitted).

    Raises
    ------
    WavelengthError
        A fixed-wavelength selector's target lies outside the sensor range.
    """
    if isinstance(node, WeightedSelector):
        return int(node.n_select)
    if isinstance(node, BandSelector) and wavelengths_nm is not None:
        try:
            return node.selection(np.asarray(wavelengths_nm, dtype=np.float64)).k
        except NotFittedError:
            pass  # a data-driven selector: its band count shows once fitted
    port = type(node).OUTPUT_PORTS.get("rgb_image")
    if port is not None and port.shape and isinstance(port.shape[-1], int):
        return int(port.shape[-1])
    return None


def describe_node(name: str, node: Node) -> str:
    """``"selector 'name' (Type)"``, for messages."""
    return f"selector {name!r} ({type(node).__name__})"

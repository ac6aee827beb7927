"""A band selection as an MLflow model: ``mlflow.pyfunc.load_model(uri).predict(cube)`` applies it.

The model is the run's :class:`~bandselect.selection.BandSelection` (``selection.json`` inside the model)
and the product it makes, named as in the flow's ``export.products``: ``"composite"`` (the three R, G, B
bands, the values the composites store holds) or ``"bands"`` (every selected band in increasing
wavelength, the values the k-band store holds). ``predict`` takes an ``(H, W, C)`` float32
cube of the sensor the selection was made for (an acquisition as the store holds it; the signature
says so) and returns exactly the exported product's values; ``params={"product": ...}`` picks the
other one.

The model is written "from code" (MLflow's recommended form, no pickled object): the loader is
:mod:`bandselect.tracking._model_code`, so loading needs ``bandselect`` installed, nothing else.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.models import Model, ModelSignature
from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

from bandselect.errors import ConfigError, ShapeError
from bandselect.products.bands import stored_band_indices
from bandselect.selection import BandSelection

__all__ = ["MODEL_ARTIFACT", "PRODUCTS", "SelectionModel", "apply_selection", "log_selection_model"]

#: Where the model lives in the run's artifacts.
MODEL_ARTIFACT = "model"
#: What ``predict`` can return.
PRODUCTS = ("composite", "bands")
_SELECTION_FILE = "selection.json"


def apply_selection(selection: BandSelection, cube: Any, product: str) -> np.ndarray:
    """The product of ``selection`` on ``cube`` (``(..., C)`` float32): composite or k-band values.

    The same values, in the same band order, as the exported products (:mod:`bandselect.products`).

    Raises
    ------
    ConfigError
        An unknown product.
    ShapeError
        A cube without ``C`` bands last, or a composite of fewer than three bands.
    """
    if product not in PRODUCTS:
        raise ConfigError(
            "product",
            expected=f"one of {list(PRODUCTS)}",
            found=repr(product),
            fix="ask for 'composite' (R, G, B) or 'bands' (every selected band)",
        )
    array = np.asarray(cube, dtype=np.float32)
    if array.ndim < 3:
        raise ShapeError(
            "cube",
            expected="(H, W, C) or (B, H, W, C) bands last",
            found=f"shape {array.shape}",
            fix="pass the cube as the store holds it",
        )
    selected = selection.take(array)  # checks the band count
    if product == "composite":
        selection.rgb_indices  # noqa: B018 - raises for fewer than three bands: no composite of them
        return selected[..., :3]
    return array[..., stored_band_indices(selection)]


class SelectionModel(mlflow.pyfunc.PythonModel):
    """The pyfunc model: reads the selection at load time, applies it in ``predict``."""

    def load_context(self, context: Any) -> None:
        """Read ``selection.json`` and the default product from the model's artifacts."""
        content = json.loads(Path(context.artifacts["selection"]).read_text(encoding="utf-8"))
        self.selection = BandSelection.from_dict(content["selection"])
        self.product = str(content["product"])

    # MLflow reads these annotations (an ndarray in, an ndarray out); the signature itself is given
    # explicitly when the model is saved.
    def predict(
        self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """The product of the selection on ``model_input`` (the default product unless ``params`` says).

        ``model_input`` is an ``(H, W, C)`` float32 cube; ``params={"product": "composite" | "bands"}``.
        """
        product = str((params or {}).get("product") or self.product)
        return apply_selection(self.selection, model_input, product)


def _signature(selection: BandSelection, product: str) -> ModelSignature:
    k = 3 if product == "composite" else selection.k
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, selection.n_bands))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, k))]),
        params=ParamSchema([ParamSpec("product", "string", product)]),
    )


def log_selection_model(
    run_id: str,
    selection: BandSelection,
    *,
    product: str = "composite",
    registered_name: str | None = None,
    input_example: np.ndarray | None = None,
) -> str:
    """Log ``selection`` as an MLflow model of the run (named ``model``); register it when named.

    Parameters
    ----------
    run_id
        The MLflow run (addressed by id: callers may run in worker threads).
    selection
        The selection the model applies.
    product
        The default product of ``predict`` (``"composite"`` or ``"bands"``).
    registered_name
        Also register the model under this name (a new version each time).
    input_example
        A small cube of the sensor (e.g. a crop of an acquisition), stored with the model.

    Returns
    -------
    str
        The model URI, ``models:/<model_id>``.
    """
    if product not in PRODUCTS:
        raise ConfigError(
            "model product",
            expected=f"one of {list(PRODUCTS)}",
            found=repr(product),
            fix="use 'composite' or 'bands'",
        )
    with tempfile.TemporaryDirectory() as folder:
        artifact = Path(folder) / _SELECTION_FILE
        artifact.write_text(
            json.dumps({"selection": selection.to_dict(), "product": product}), encoding="utf-8"
        )
        # Model.log (not save_model + log_artifacts): an MLflow 3 logged model, listed under the
        # run's "Logged models" and in the experiment's Models tab, addressed by ``models:/<id>``.
        info = Model.log(
            artifact_path=None,
            flavor=mlflow.pyfunc,
            name=MODEL_ARTIFACT,
            run_id=run_id,
            registered_model_name=registered_name or None,
            python_model=str(Path(__file__).with_name("_model_code.py")),
            artifacts={"selection": str(artifact)},
            signature=_signature(selection, product),
            input_example=None if input_example is None else np.asarray(input_example, dtype=np.float32),
            pip_requirements=["bandselect"],
            tags={"bandselect.product": product, "bandselect.k": str(selection.k)},
        )
    return str(info.model_uri)

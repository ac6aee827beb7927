"""The selection as an MLflow pyfunc model: logged with a run, loaded back, reproduces both products."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from bandselect import tracking
from bandselect.errors import ConfigError, ShapeError
from bandselect.selection import BandSelection
from bandselect.tracking.selection_model import apply_selection, log_selection_model

GRID = np.linspace(400.0, 900.0, 12)


def test_model_reproduces_both_products_and_registers(tmp_path: Path) -> None:
    uri = tracking.tracking_uri_default(tmp_path)
    selection = BandSelection.create([5, 2, 9, 1], GRID, selector_type="Manual", output_indices=[9, 5, 2, 1])
    cube = np.random.default_rng(0).random((6, 7, 12), dtype=np.float32)
    with tracking.start_run("models", tracking_uri=uri) as run:
        model_uri = log_selection_model(
            run.info.run_id, selection, product="bands", registered_name="bands", input_example=cube[:2, :2]
        )
    model = mlflow.pyfunc.load_model(model_uri)
    np.testing.assert_array_equal(model.predict(cube), cube[..., [1, 2, 5, 9]])  # the product's order
    np.testing.assert_array_equal(model.predict(cube, params={"product": "composite"}), cube[..., [9, 5, 2]])
    assert model.metadata.signature.inputs.inputs[0].shape == (-1, -1, 12)
    versions = MlflowClient(tracking_uri=uri).search_model_versions("name='bands'")
    assert [int(v.version) for v in versions] == [1]


def test_bad_products_and_cubes() -> None:
    selection = BandSelection.create([5, 2], GRID, selector_type="Manual")
    cube = np.zeros((4, 4, 12), np.float32)
    with pytest.raises(ConfigError, match=r"'composite' .* or 'bands'"):
        apply_selection(selection, cube, "rgb")
    with pytest.raises(ShapeError, match="at least three selected bands"):
        apply_selection(selection, cube, "composite")
    with pytest.raises(ShapeError, match=r"\(\.\.\., 12\) bands last"):
        apply_selection(selection, np.zeros((4, 4, 11), np.float32), "bands")

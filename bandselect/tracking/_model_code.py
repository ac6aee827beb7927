"""The code MLflow loads for a band-selection model (models from code: no pickled object)."""

from __future__ import annotations

import mlflow

from bandselect.tracking.selection_model import SelectionModel

mlflow.models.set_model(SelectionModel())

"""One selection, whatever computes it: a notebook ``fit()``, the statistical trainer, the flow and the
comparison flow give the same ``BandSelection`` on the same pixels of a real AVIRIS store.

Before the one binning rule, the flow's stored statistics used widened histogram edges and its supervised
CIR pick on jasper_ridge differed from ``fit()`` (band 48 against 42).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bandselect.evaluation import block_grid, spatial_block_split
from bandselect.evaluation.compare import SplitSettings, _tiles
from bandselect.flows import select_bands
from bandselect.flows.compare_selectors import compare_selectors
from bandselect.pipeline import Pipeline
from bandselect.selectors import SupervisedCIRBandSelector
from bandselect.store import ingest, open_campaign
from bandselect.training import CampaignDataModule, StatisticalTrainer

pytestmark = [pytest.mark.slow, pytest.mark.realdata, pytest.mark.usefixtures("prefect_harness")]

# jasper_ridge: 1 tree, 2 water, 3 dirt, 4 road. Tree against the rest is where the widened edges of the
# old flow statistics moved the NIR pick (49 instead of 48).
TREE = 1
PIPELINE = {
    "nodes": {"selector": {"type": "SupervisedCIRBandSelector", "config": {"num_spectral_bands": "auto"}}},
    "connections": [
        ["data.cube", "selector.cube"],
        ["data.wavelengths", "selector.wavelengths"],
        ["data.mask", "selector.mask"],
    ],
}


@pytest.fixture(scope="module")
def jasper_store(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = shared_data_dir / "jasper_ridge" / "jasper_ridge.npz"
    if not source.is_file():
        pytest.skip(f"real cube {source} is absent")
    store = tmp_path_factory.mktemp("jasper") / "jasper.zarr"
    # Its AVIRIS band centres are out of order at two spectrometer overlaps: ingest sorts them.
    ingest([source], store, sort_bands=True, chunk_yx=32)
    return store


def _scene(store: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    campaign = open_campaign(store)
    dataset = campaign.open(campaign.ids()[0])
    return dataset["cube"].values, dataset["mask"].values, np.asarray(campaign.wavelengths)


def test_notebook_trainer_flow_and_comparison_agree(
    jasper_store: Path, tmp_path: Path, mlflow_store: str
) -> None:
    cube, labels, wavelengths = _scene(jasper_store)
    tree = labels == TREE

    # 1. A notebook: fit() on the arrays.
    notebook = SupervisedCIRBandSelector(num_spectral_bands=cube.shape[-1]).fit(
        cube[None], tree[None], wavelengths
    )
    expected = notebook.selection(wavelengths)

    # 2. The statistical trainer, streaming the store's frames (class 1 positive, the rest negative).
    pipeline = Pipeline.from_config(
        {
            **PIPELINE,
            "nodes": {"selector": {**PIPELINE["nodes"]["selector"], "config": {"num_spectral_bands": 198}}},
        }
    )
    datamodule = CampaignDataModule(jasper_store, positive_label=TREE)
    StatisticalTrainer(pipeline=pipeline, datamodule=datamodule).fit()
    streamed = pipeline.nodes["selector"].selection(wavelengths)

    # 3. The select-bands flow: Dask statistics of the store, stored in its sidecar.
    store = tmp_path / "jasper.zarr"
    shutil.copytree(jasper_store, store)
    summary = select_bands(
        {
            "campaign": "jasper",
            "store": str(store),
            "output": str(tmp_path / "composites.zarr"),
            "pipeline": PIPELINE,
            "positive_label": TREE,
            "tracking": {"tracking_uri": mlflow_store},
        }
    )
    assert streamed == expected
    assert summary.selection == expected, (summary.selection, expected)
    for name in ("fisher", "auc", "mi", "combined"):
        np.testing.assert_allclose(summary.selection.score(name), expected.score(name), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(streamed.score(name), expected.score(name), rtol=1e-9, atol=1e-12)

    # 4. The comparison flow fits on its train blocks: the same selection as fit() on those tiles.
    result = compare_selectors(
        {
            "scene": {"path": str(jasper_store), "label": TREE},
            "selectors": {"cir": {"type": "SupervisedCIRBandSelector"}},
            "stability": {"n_bootstrap": 0},
            "n_random_draws": 2,
            "tracking_uri": mlflow_store,
            "output_dir": str(tmp_path / "compare"),
        }
    )
    (record,) = [r for r in result.records if r["name"] == "cir"]
    split = SplitSettings()  # the flow's defaults: the same blocks held out
    held_out = spatial_block_split(
        *tree.shape, n_blocks=split.n_blocks, test_fraction=split.test_fraction, seed=split.seed, mask=tree
    ).test
    blocks = block_grid(*tree.shape, n_blocks=split.n_blocks)
    train = np.unique(blocks[~held_out])
    tile_cube, tile_labels = _tiles(cube.astype(np.float32), tree, blocks, train)
    on_tiles = SupervisedCIRBandSelector(num_spectral_bands=cube.shape[-1]).fit(
        torch.from_numpy(tile_cube), torch.from_numpy(tile_labels), wavelengths
    )
    assert record["bands"] == list(on_tiles.selection(wavelengths).indices)

"""The Prefect summary markdown of a flow run, and what it says about the search after training."""

from __future__ import annotations

from bandselect.reports.markdown import flow_run_markdown, search_note
from bandselect.selection import BandSelection

GRID = [450.0 + 10.0 * i for i in range(20)]


def _markdown(selection: BandSelection, trained_bands: list[int] | None) -> str:
    return flow_run_markdown(
        campaign="camp",
        flow="select-bands",
        selector="selector",
        selection=selection,
        trained=True,
        kept_epoch=41,
        acquisitions=["a", "b"],
        exported={"published": 2},
        output="out.zarr",
        mlflow_link="http://mlflow/#/runs/1",
        trained_bands=trained_bands,
    )


def test_the_summary_says_which_bands_the_search_moved() -> None:
    selection = BandSelection.create([2, 9, 15], GRID, selector_type="SoftChannelSelector")
    moved = _markdown(selection, [2, 9, 16])
    assert (
        "weights of epoch 42 kept; training gave 470, 540, 610 nm; the search on the validation rows "
        "moved 1 of them." in moved
    )
    assert search_note(selection, [3, 10, 16]).endswith("moved 3 of them")
    assert "RX AUROC" not in moved  # not measured, not said
    scored = flow_run_markdown(
        campaign="camp",
        flow="select-bands",
        selector="selector",
        selection=selection,
        trained=True,
        kept_epoch=None,
        acquisitions=["a"],
        exported={"published": 1},
        output="out.zarr",
        mlflow_link="http://mlflow/#/runs/1",
        val_auroc=0.99871,
        test_auroc=0.97654,
    )
    assert "test 0.9765 (held-out rows); validation 0.9987 (chose the epoch" in scored
    # No move, no search (statistics) or no record: nothing said.
    for trained in ([15, 2, 9], None):
        text = _markdown(selection, trained)
        assert "search" not in text and "weights of epoch 42 kept." in text


def test_the_summary_says_how_many_pixels_without_data_were_left_out() -> None:
    selection = BandSelection.create([2, 9, 15], GRID, selector_type="SoftChannelSelector")
    common = {
        "campaign": "camp",
        "flow": "select-bands",
        "selector": "selector",
        "selection": selection,
        "trained": False,
        "kept_epoch": None,
        "acquisitions": ["a"],
        "exported": {"published": 1},
        "output": "out.zarr",
        "mlflow_link": "http://mlflow/#/runs/1",
    }
    text = flow_run_markdown(**common, n_invalid=500)
    assert "**Acquisitions** 1 (500 pixels without data left out of the statistics and the training);" in text
    assert "without data" not in flow_run_markdown(**common)

"""The Prefect summary markdown of a flow run, and what it says about the search after training."""

from __future__ import annotations

from typing import Any

from bandselect.reports.markdown import flow_run_markdown, markdown_table, search_note
from bandselect.selection import BandSelection

GRID = [450.0 + 10.0 * i for i in range(20)]
SELECTION = BandSelection.create([2, 9, 15], GRID, selector_type="SoftChannelSelector")
MLFLOW = "http://mlflow/#/runs/1"


def _markdown(**settings: Any) -> str:
    """The summary of a one-acquisition run of ``SELECTION``, with ``settings`` changed."""
    arguments: dict[str, Any] = {
        "campaign": "camp",
        "flow": "select-bands",
        "selector": "selector",
        "selection": SELECTION,
        "trained": True,
        "kept_epoch": None,
        "acquisitions": ["a"],
        "exported": {"published": 1},
        "output": "out.zarr",
        "mlflow_link": MLFLOW,
    }
    return flow_run_markdown(**{**arguments, **settings})


def test_the_summary_says_which_bands_the_search_moved() -> None:
    moved = _markdown(kept_epoch=41, trained_bands=[2, 9, 16])
    assert (
        "weights of epoch 42 kept; training gave 470, 540, 610 nm; the search on the validation rows "
        "moved 1 of them." in moved
    )
    assert search_note(SELECTION, [3, 10, 16]).endswith("moved 3 of them")
    assert "RX AUROC" not in moved  # not measured, not said
    scored = _markdown(val_auroc=0.99871, test_auroc=0.97654)
    assert "test 0.9765 (held-out rows); validation 0.9987 (chose the epoch" in scored
    # No move, no search (statistics) or no record: nothing said.
    for trained in ([15, 2, 9], None):
        text = _markdown(kept_epoch=41, trained_bands=trained)
        assert "search" not in text and "weights of epoch 42 kept." in text


def test_the_summary_says_how_many_pixels_without_data_were_left_out() -> None:
    text = _markdown(trained=False, n_invalid=500)
    assert "**Acquisitions** 1 (500 pixels without data left out of the statistics and the training);" in text
    assert "without data" not in _markdown(trained=False)


def test_the_summary_says_how_the_selector_was_fitted_and_links_the_other_ui() -> None:
    # The Prefect artifact links the MLflow run; the MLflow run's description links the Prefect run.
    prefect = _markdown()
    assert "fitted by two-phase training." in prefect and f"[{MLFLOW}]" in prefect
    assert "Prefect flow run" not in prefect
    page = "http://prefect/flow-runs/flow-run/7"
    mlflow = _markdown(mlflow_link=None, prefect_link=page)
    assert f"**Prefect flow run**: [{page}]({page})" in mlflow and "MLflow run" not in mlflow
    # A trained selector that no statistics initialised (the recipe's uniform start) is not "two-phase".
    assert "fitted by gradient training from the uniform start." in _markdown(initialised=False)
    assert "fitted by statistics." in _markdown(trained=False)
    # What MLflow's collapsed description shows first: the bands and the reported AUROC, no title.
    lead = _markdown(mlflow_link=None, heading=False, test_auroc=0.98765).splitlines()[0]
    assert lead == "**Selected** 470.0, 540.0, 600.0 nm (bands 2, 9, 15); test RX AUROC 0.9877"
    assert prefect.startswith("# select-bands: camp\n\n**Selected** 470.0, 540.0, 600.0 nm")
    # The bands table, one row per output channel.
    assert "| channel | band | wavelength (nm) |\n|---|---|---|\n| band 1 | 2 | 470.0 |" in prefect


def test_a_markdown_table_keeps_one_row_per_line_whatever_a_cell_holds() -> None:
    table = markdown_table(["name", "auroc"], [["a|b\nc", 0.5], ["d", ""]])
    assert table.splitlines() == ["| name | auroc |", "|---|---|", "| a\\|b c | 0.5 |", "| d |  |"]

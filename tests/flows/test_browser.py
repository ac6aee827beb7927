"""The Prefect UI and the MLflow UI, as a user opens them: server mode, a flow run, headless Chromium.

Debian's ``chromium`` (installed by ``make test`` when missing) renders both single-page apps offline;
``--dump-dom`` with a virtual-time budget gives the DOM after their scripts ran, ``--screenshot`` a picture
(written under the test's tmp folder). The test asserts that the selected wavelengths appear on the
Prefect flow run's artifact page and on the MLflow run page.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from bandselect.synthetic import write_campaign
from bandselect.tracking import mlflow_run_link

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


def _chromium(url: str, *, screenshot: Path | None = None, budget_ms: int = 20000) -> str:
    """The rendered DOM of ``url`` (and a screenshot when asked)."""
    assert CHROMIUM is not None
    profile = Path(os.environ.get("TMPDIR", "/tmp"))
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile / 'bandselect-chromium'}"]
    common.append(f"--virtual-time-budget={budget_ms}")
    if screenshot is not None:
        subprocess.run(
            [*common, f"--screenshot={screenshot}", "--window-size=1600,1000", url],
            check=True,
            capture_output=True,
            timeout=120,
        )
    result = subprocess.run([*common, "--dump-dom", url], check=True, capture_output=True, timeout=120)
    return result.stdout.decode("utf-8", "replace")


def _get_json(url: str, payload: dict | None = None) -> object:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_selected_wavelengths_show_in_prefect_and_mlflow_uis(servers, tmp_path: Path) -> None:
    store = tmp_path / "campaign.zarr"
    write_campaign(store, 2, 48, 48, n_bands=24, seed=2, chunk_yx=24, anomaly_fraction=0.03)
    script = tmp_path / "run_flow.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json
            from bandselect.flows import select_bands

            summary = select_bands({{
                "campaign": "browser",
                "store": {str(store)!r},
                "output": {str(tmp_path / "composites.zarr")!r},
            }})
            print("SUMMARY " + json.dumps({{
                "flow_run_id": summary.flow_run_id,
                "run_id": summary.mlflow_run_id,
                "wavelengths": list(summary.selection.wavelengths_nm),
            }}))
            """
        )
    )
    environment = {**os.environ, **servers.environment}
    done = subprocess.run(
        [sys.executable, str(script)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("SUMMARY "))[8:])
    wavelengths = [f"{w:.1f}" for w in summary["wavelengths"]]

    # Prefect: the flow run's markdown summary artifact, rendered by the UI.
    ui = servers.prefect_api_url.removesuffix("/api")
    artifacts = _get_json(
        f"{servers.prefect_api_url}/artifacts/filter",
        {"artifacts": {"flow_run_id": {"any_": [summary["flow_run_id"]]}}},
    )
    summary_artifact = next(a for a in artifacts if a["key"] == "browser-summary")  # type: ignore[union-attr]
    page = _chromium(f"{ui}/artifacts/artifact/{summary_artifact['id']}", screenshot=tmp_path / "prefect.png")
    assert all(w in page for w in wavelengths), wavelengths
    run_page = _chromium(f"{ui}/runs/flow-run/{summary['flow_run_id']}", screenshot=tmp_path / "flow-run.png")
    assert "campaign:browser" in run_page  # the run's tags
    assert all(w in run_page for w in wavelengths), wavelengths  # the selection's log line

    # MLflow: the run page (selection params and tags).
    experiment_id = _get_json(f"{servers.mlflow_url}/api/2.0/mlflow/runs/get?run_id={summary['run_id']}")[
        "run"  # type: ignore[index]
    ]["info"]["experiment_id"]
    link = mlflow_run_link(servers.mlflow_url, experiment_id, summary["run_id"])
    mlflow_page = _chromium(link, screenshot=tmp_path / "mlflow.png")
    assert all(w.rstrip("0").rstrip(".") in mlflow_page for w in wavelengths), wavelengths
    assert (tmp_path / "prefect.png").stat().st_size > 10_000 and (
        tmp_path / "mlflow.png"
    ).stat().st_size > 10_000

"""Task: what a flow run leaves in the Prefect UI — a markdown summary, a link to its MLflow run, tags.

Artifact keys are per campaign (``<campaign>-summary``, ``<campaign>-mlflow-run``), so the UI's artifact
page shows each campaign's latest run and its history.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from prefect import get_client, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from bandselect.tracking import mlflow_run_link

__all__ = ["artifact_key", "publish_summary", "tag_flow_run"]

_KEY_PATTERN = re.compile(r"[^a-z0-9-]+")


def artifact_key(campaign: str, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) for ``what`` of ``campaign``."""
    slug = _KEY_PATTERN.sub("-", campaign.lower()).strip("-")[:50].strip("-") or "campaign"
    return f"{slug}-{what}"


@task(name="publish-summary", cache_policy=NO_CACHE)
def publish_summary(campaign: str, markdown: str, tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """Publish the run's markdown summary and the link to its MLflow run; return the link."""
    link = mlflow_run_link(tracking_uri, experiment_id, run_id)
    create_markdown_artifact(
        markdown, key=artifact_key(campaign, "summary"), description=f"{campaign}: summary"
    )
    create_link_artifact(
        link,
        link_text=f"MLflow run {run_id}",
        key=artifact_key(campaign, "mlflow-run"),
        description="the MLflow run of this flow run"
        + ("" if urlparse(tracking_uri).scheme in ("http", "https") else " (start `mlflow ui` to open it)"),
    )
    return link


def tag_flow_run(*tags: str) -> None:
    """Add ``tags`` (e.g. ``campaign:<name>``, ``selector:<type>``) to the current flow run."""
    flow_run_id = flow_run.get_id()
    if flow_run_id is None:
        return
    current = list(flow_run.get_tags())
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run_id, tags=list(dict.fromkeys([*current, *tags])))

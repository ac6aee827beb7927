"""Serve ``process_campaign`` on a cron schedule from this process (no work pool, no worker).

Usage::

    eval "$(python -m bandselect.servers env)"        # or any PREFECT_API_URL / MLFLOW_TRACKING_URI
    python deployments/serve.py --campaign campaign-a --archive /data/a/archive --workdir /data/a/bandselect \
        [--cron "0 2 * * *"] [--name process-campaign-served]

The process runs scheduled and manually triggered runs itself until interrupted (Ctrl-C). Trigger one now
with ``prefect deployment run 'process-campaign/process-campaign-served'``. The same deployment for a
``process`` work pool is in ``deployments/prefect.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CRON = "0 2 * * *"
DEFAULT_NAME = "process-campaign-served"


def parameters_for(campaign: str, archive: Path, workdir: Path) -> dict[str, dict[str, str]]:
    """The ``process_campaign`` parameters of a campaign: ``{"config": {...}}`` with absolute paths.

    Parameters
    ----------
    campaign
        Campaign name (MLflow tag, output provenance).
    archive
        Folder watched for new cubes; read only.
    workdir
        Folder of the campaign store (``store.zarr``) and the composites (``composites.zarr``).

    Returns
    -------
    dict
        Parameters as stored on the deployment.
    """
    workdir = workdir.resolve()
    return {
        "config": {
            "campaign": campaign,
            "archive": str(archive.resolve()),
            "store": str(workdir / "store.zarr"),
            "output": str(workdir / "composites.zarr"),
        }
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Register ``process_campaign`` with a cron schedule and serve it until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--campaign", required=True)
    parser.add_argument("--archive", type=Path, required=True, help="folder of source cubes (read only)")
    parser.add_argument(
        "--workdir", type=Path, required=True, help="folder for store.zarr and composites.zarr"
    )
    parser.add_argument("--cron", default=DEFAULT_CRON, help="schedule (default %(default)r, UTC)")
    parser.add_argument("--name", default=DEFAULT_NAME, help="deployment name (default %(default)s)")
    args = parser.parse_args(argv)
    if not args.archive.is_dir():
        parser.error(f"--archive {args.archive} is not a folder")

    # Imported here: `--help` and argument errors answer without loading Prefect and the flows.
    from prefect import serve

    from bandselect.flows.process_campaign import process_campaign

    deployment = process_campaign.to_deployment(
        name=args.name,
        cron=args.cron,
        parameters=parameters_for(args.campaign, args.archive, args.workdir),
        tags=["bandselect", "campaign"],
        concurrency_limit=1,
    )
    serve(deployment)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``bandselect`` command line: one entry point, one subcommand per job.

Each subcommand is added by its own ``_add_<name>(subparsers)`` function that registers its arguments
and sets ``func`` to a ``_cmd_<name>(args) -> int``; add new subcommands the same way in
:func:`build_parser`. Errors of bandselect (bad input, bad store) end the command with exit code 2 and
the error's message, without a traceback.
"""

from __future__ import annotations

import argparse
import gc
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bandselect.cli_errors import EXIT_OK, quiet_console, run_reporting_errors
from bandselect.errors import ConfigError
from bandselect.names import VAR_CUBE, VAR_MASK, VAR_VALID
from bandselect.spectral import sensor_range

if TYPE_CHECKING:
    import dask.array as da

    from bandselect.flows import FlowSummary
    from bandselect.flows.compare_selectors import ComparisonResult

DEMO_DIR = Path(".demo")
#: Folder of running servers (`bandselect servers start --dir`) that `bandselect run` reuses.
SERVERS_ENV = "BANDSELECT_SERVERS_DIR"

_DESCRIPTION = """\
Hyperspectral band selection over campaign stores.

A campaign store is a zarr directory with one group per acquisition (cube (y, x, band) float32,
wavelengths in nm, optional label mask). Typical use:

  bandselect ingest scenes/ --store campaign.zarr     # ENVI, GeoTIFF, HDF5, .npz, .npy, .mat; folders
  bandselect info campaign.zarr                       # what is in a store
  bandselect synth synth.zarr --acquisitions 4 --height 512 --width 512
  bandselect demo                                     # select bands on a synthetic campaign (.demo/)
  bandselect run configs/select_bands.yaml            # the select-bands flow from a YAML config
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="bandselect", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print tracebacks (of Prefect's runs too) with errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_ingest(subparsers)
    _add_info(subparsers)
    _add_synth(subparsers)
    _add_demo(subparsers)
    _add_run(subparsers)
    _add_servers(subparsers)
    _add_report(subparsers)
    for subparser in subparsers.choices.values():  # `bandselect run --verbose ...` works as well
        subparser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="as above")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see :mod:`bandselect.cli_errors`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_reporting_errors(args.command, lambda: args.func(args), verbose=args.verbose)


def console_main() -> int:
    """The ``bandselect`` executable: :func:`main`, then the heap frozen (:func:`gc.freeze`).

    The interpreter's exit runs full garbage collections over every object alive, about 1.5 s of a
    small run once torch, MLflow and Prefect are loaded (1.6 s against 0.2 s frozen, measured); the
    process is ending, so there is nothing left worth collecting. Not in :func:`main`, which tests and
    notebooks call in a process that goes on.
    """
    code = main()
    gc.freeze()
    return code


# -- ingest ----------------------------------------------------------------------------------------------
def _add_ingest(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="add cubes from files or folders to a campaign store",
        description="Add cubes to a campaign store (created if missing). Every file is validated before "
        "anything is written; a call that fails writes nothing. Ingesting the same content again is a "
        "no-op. Integer cubes (e.g. uint16) are stored as float32 with their raw values.",
        epilog="formats: ENVI (.hdr + .raw/.img/.bil/.bsq/.bip/.dat, BIL/BIP/BSQ; 'bbl' and 'data ignore "
        "value' honoured, 'map info' kept), GeoTIFF/COG (.tif/.tiff, via rasterio/GDAL; wavelengths from "
        "band metadata or descriptions), HDF5 (.h5/.hdf5/.he5, via h5py), NumPy .npz (cube, wavelengths_nm, "
        "optional mask or gt), .npy (cube only; needs --wavelengths), MATLAB .mat (v5/v7 via SciPy, v7.3 "
        "via h5py); --reader gdal reads any raster GDAL opens. Wavelengths must lie in 200-25,000 nm "
        "after unit conversion. See docs/formats.md.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (walked recursively)")
    parser.add_argument(
        "--store",
        required=True,
        metavar="STORE",
        help="campaign store directory or object-store URL (s3://bucket/prefix)",
    )
    parser.add_argument(
        "--wavelengths",
        metavar="FILE_OR_LIST",
        help="band centres in nm for every file, as '430,438,...' or a file of numbers (.txt/.csv/.npy); "
        "needed when a header has none",
    )
    parser.add_argument(
        "--mask-nonfinite",
        action="store_true",
        help="store NaN/Inf as 0 and record those pixels as invalid instead of failing",
    )
    parser.add_argument(
        "--sort-bands",
        action="store_true",
        help="store bands sorted by wavelength when a source lists them out of order",
    )
    parser.add_argument(
        "--byte-order",
        choices=("little", "big"),
        help="read raw ENVI data in this byte order, whatever the header says (a header without "
        "'byte order' is read as little-endian, the ENVI default, and the assumption recorded)",
    )
    parser.add_argument(
        "--allow-trailing-bytes",
        action="store_true",
        help="accept ENVI data files longer than their header describes (the extra bytes are ignored)",
    )
    parser.add_argument(
        "--reader",
        choices=("auto", "gdal"),
        default="auto",
        help="auto: each format's reader (default); gdal: read every file through GDAL (rasterio), e.g. an "
        "ENVI file GDAL reads differently, or any raster format GDAL opens",
    )
    _add_write_options(parser)
    parser.set_defaults(func=_cmd_ingest)


def _add_write_options(parser: argparse.ArgumentParser) -> None:
    """Options of every command that writes acquisitions into a campaign store (ingest, synth)."""
    # 256 is bandselect.store.DEFAULT_CHUNK_YX, not imported here: building the parser stays light.
    parser.add_argument(
        "--chunk", type=int, default=256, metavar="N", help="spatial chunk size in pixels (N×N; default 256)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _cmd_ingest(args: argparse.Namespace) -> int:
    from bandselect.store import ingest_files

    results = ingest_files(
        args.paths,
        args.store,
        wavelengths=args.wavelengths,
        mask_nonfinite=args.mask_nonfinite,
        sort_bands=args.sort_bands,
        chunk_yx=args.chunk,
        progress=not args.quiet,
        byte_order=args.byte_order,
        allow_trailing_bytes=args.allow_trailing_bytes,
        reader=args.reader,
    )
    for result in results:
        status = "added" if result.created else "already present"
        print(f"{result.acquisition_id}\t{status}\t{result.source}")
    new = sum(result.created for result in results)
    print(f"{new} added, {len(results) - new} already present in {args.store}")
    return EXIT_OK


# -- info ------------------------------------------------------------------------------------------------
def _add_info(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show the acquisitions of a campaign store",
        description="List a campaign store's acquisitions: shape, labels, invalid pixels, source.",
    )
    parser.add_argument(
        "store", metavar="STORE", help="campaign store directory or object-store URL (s3://bucket/prefix)"
    )
    parser.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    print(campaign_summary(args.store))
    return EXIT_OK


def campaign_summary(store: str | Path) -> str:
    """A human-readable summary of a campaign store (what ``bandselect info`` prints)."""
    from bandselect.names import ATTR_SOURCE_FILE, ATTR_SOURCE_FORMAT
    from bandselect.store import open_campaign

    campaign = open_campaign(store)
    ids = campaign.ids()
    wavelengths = campaign.wavelengths
    lines = [f"campaign {campaign.path}: {len(ids)} acquisition{'s' if len(ids) != 1 else ''}"]
    if wavelengths is not None:
        lines.append(f"wavelengths: {sensor_range(wavelengths)}")
    for acquisition_id in ids:
        dataset = campaign.open(acquisition_id)
        height, width, n_bands = (int(s) for s in dataset[VAR_CUBE].shape)
        parts = [f"{height}×{width}×{n_bands}"]
        if VAR_MASK in dataset:
            counts = _label_counts(dataset[VAR_MASK].data)
            parts.append("labels " + ", ".join(f"{v}: {c}" for v, c in sorted(counts.items())))
        else:
            parts.append("no labels")
        if VAR_VALID in dataset:
            # Reduced chunk by chunk by Dask: the (y, x) array is never loaded whole.
            invalid = int((~dataset[VAR_VALID].data).sum().compute())
            parts.append(f"{invalid} invalid pixels")
        source = dataset.attrs.get(ATTR_SOURCE_FILE) or dataset.attrs.get(ATTR_SOURCE_FORMAT, "")
        parts.append(str(source))
        lines.append(f"  {acquisition_id}  " + "  ".join(parts))
    return "\n".join(lines)


def _label_counts(mask: da.Array) -> Counter[int]:
    """Pixels per label value, counted one stored chunk at a time (a mask may not fit in memory)."""
    counts: Counter[int] = Counter()
    for block in mask.blocks.ravel():
        values, block_counts = np.unique(np.asarray(block.compute()), return_counts=True)
        counts.update(dict(zip(values.tolist(), block_counts.tolist(), strict=True)))
    return counts


# -- synth -----------------------------------------------------------------------------------------------
def _add_synth(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write a synthetic VNIR campaign with planted anomalies",
        description="Write a synthetic campaign (61 bands, 430–910 nm by default) block by block: "
        "vegetation, soil, water, asphalt and paint patches under changing light, with small anomalies "
        "that differ from the background only in known bands (stored in the 'discriminative_bands' "
        "attribute; labels in 'mask').",
    )
    parser.add_argument(
        "store", metavar="STORE", help="campaign store directory or object-store URL (created if missing)"
    )
    parser.add_argument("--acquisitions", type=int, default=1, metavar="N", help="number of scenes")
    parser.add_argument("--height", type=int, required=True, metavar="H", help="rows per scene")
    parser.add_argument("--width", type=int, required=True, metavar="W", help="columns per scene")
    parser.add_argument("--bands", type=int, default=61, metavar="C", help="number of bands (default 61)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--anomaly-fraction",
        type=float,
        default=0.005,
        metavar="F",
        help="fraction of pixels in anomalies (default 0.005)",
    )
    _add_write_options(parser)
    parser.set_defaults(func=_cmd_synth)


def _cmd_synth(args: argparse.Namespace) -> int:
    from bandselect.synthetic import write_campaign

    campaign = write_campaign(
        args.store,
        args.acquisitions,
        args.height,
        args.width,
        n_bands=args.bands,
        seed=args.seed,
        anomaly_fraction=args.anomaly_fraction,
        chunk_yx=args.chunk,
        progress=not args.quiet,
    )
    for acquisition_id in campaign.ids():
        print(acquisition_id)
    return EXIT_OK


# -- demo / run ------------------------------------------------------------------------------------------
def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the select-bands flow on a small synthetic campaign under .demo/ (no servers)",
        description="Write a small synthetic campaign under .demo/ (or --dir) and run the select-bands flow "
        "on it: Prefect's ephemeral API (PREFECT_HOME defaults to DIR/prefect), MLflow in sqlite under "
        "DIR/mlflow, Dask in process. Prints where the results are and the selected bands.",
    )
    parser.add_argument("--dir", type=Path, default=DEMO_DIR, help="output folder (default .demo)")
    parser.set_defaults(func=_with_terminal_progress(_cmd_demo))


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the select-bands flow (or process-campaign) from a YAML config",
        description="Run a flow from a YAML config (see configs/select_bands.yaml; relative paths are "
        "relative to the config file). Without servers configured (PREFECT_API_URL, MLFLOW_TRACKING_URI) it "
        "uses Prefect's ephemeral API and a sqlite MLflow store in ./.mlflow (the current folder).",
    )
    parser.add_argument("config", type=Path, metavar="CONFIG.yaml", help="flow config")
    parser.add_argument(
        "--servers",
        type=Path,
        metavar="DIR",
        default=None,
        help="reuse the servers started with `bandselect servers start --dir DIR` (default "
        f"${SERVERS_ENV} when set): the flow reports to their Prefect and MLflow and computes on their "
        "Dask, instead of starting a temporary Prefect server",
    )
    parser.add_argument(
        "--flow",
        choices=("select-bands", "process-campaign", "compare-selectors"),
        default="select-bands",
        help="which flow (default select-bands; process-campaign needs `archive:`; compare-selectors "
        "takes a config like configs/compare_selectors.yaml)",
    )
    parser.set_defaults(func=_with_terminal_progress(_cmd_run))


def _flow_environment(prefect_home: Path, servers: Path | None = None) -> Path | None:
    """Quiet, local defaults for the embedded mode; never overrides what the user set.

    Returns the Prefect home folder to create before the flow starts (None: the user's is used); it is
    not created here, so a config that fails validation leaves nothing behind.

    With ``servers`` (or ``$BANDSELECT_SERVERS_DIR``), the running servers of that folder are reused:
    their ``PREFECT_API_URL``, ``MLFLOW_TRACKING_URI`` and Dask address are exported unless already set,
    so no temporary Prefect server is started (~10-17 s of a small run).
    """
    import os

    from bandselect._prefect_env import set_local_defaults

    set_local_defaults()
    directory = servers or (Path(os.environ[SERVERS_ENV]) if os.environ.get(SERVERS_ENV) else None)
    if directory is not None:
        from bandselect.servers import running_environment

        for key, value in running_environment(directory).items():
            os.environ.setdefault(key, value)
    if "PREFECT_HOME" not in os.environ and "PREFECT_API_URL" not in os.environ:
        os.environ["PREFECT_HOME"] = str(prefect_home.resolve())  # must be set before prefect is imported
        return prefect_home
    return None


def _create_home(prefect_home: Path | None) -> None:
    """Create the Prefect home (its temporary server keeps its database there) once the config is valid."""
    if prefect_home is not None:
        prefect_home.mkdir(parents=True, exist_ok=True)


def _print_comparison(result: ComparisonResult) -> None:
    print("\nleaderboard (held-out spatial blocks, best first):")
    for record in result.records:
        # Every measure of the leaderboard (a multi-class one ranks by accuracy and kappa, not AUROC).
        scores = ", ".join(
            f"{measure} {record[measure]:.4f}"
            for measure in result.measures
            if isinstance(record.get(measure), float)
        )
        bands = ", ".join(f"{w:.0f}" for w in record["wavelengths_nm"])
        flags = [record["status"]] if record["status"] != "ok" else []
        if record.get("unstable"):
            flags.append("unstable")
        note = f"  [{'; '.join(flags)}]" if flags else ""
        print(f"  {record['name']:<38} {scores}{f'  bands {bands} nm' if bands else ''}{note}")
    print(f"\nMLflow parent run: {result.parent_run_id}  ({result.tracking_uri})")
    if result.mlflow_link:
        print(f"  {_ui_hint(result.tracking_uri, result.mlflow_link)}")
    print(f"HTML report:       bandselect report {result.parent_run_id} --tracking-uri {result.tracking_uri}")
    print(f"files:             {Path(result.output_dir).resolve()}")


def _ui_hint(tracking_uri: str, link: str | None) -> str:
    """How to open a run's MLflow page: on a tracking server the page itself; for a store that no server
    serves (sqlite, a folder, a database) the command that serves it first, then the page."""
    page = link or "http://127.0.0.1:5000"
    if tracking_uri.startswith(("http://", "https://")):
        return f"open:    {page}"
    serve = f"{_mlflow_command()} ui --backend-store-uri {shlex.quote(tracking_uri)}"
    return f"browse:  {serve}\n           then open {page}"


def _print_flow_summary(summary: FlowSummary, planted: str | None = None) -> None:
    from bandselect.reports.markdown import fitted_by, search_note

    selection = summary.selection
    exported = ", ".join(f"{count} {status}" for status, count in summary.exported.items() if count)
    bands = ", ".join(
        f"{index} ({wavelength:.0f} nm)"
        for index, wavelength in zip(selection.indices, selection.wavelengths_nm, strict=True)
    )
    how = fitted_by(summary.trained, summary.selector in summary.initialised)
    lines = ["", f"selected bands ({summary.selector}: {selection.selector_type}, {how}): {bands}"]
    note = search_note(selection, summary.trained_bands)
    if note is not None:
        lines.append(f"  {note} (training.refine_window; the weights plot marks both)")
    if summary.test_auroc is not None:
        validation = "" if summary.val_auroc is None else f", validation {summary.val_auroc:.4f} (optimistic)"
        lines.append(f"RX AUROC of these bands: test {summary.test_auroc:.4f} (held-out rows){validation}")
    if "composite" in (summary.products or {"composite": summary.output}):
        rgb = ", ".join(
            f"{channel} {wavelength:.0f} nm"
            for channel, wavelength in zip("RGB", selection.rgb_wavelengths_nm, strict=True)
        )
        lines.append(f"composite channels: {rgb}")
    if planted:
        lines.append(planted)
    if summary.ingest is not None and summary.ingest.failures:
        lines.append(f"skipped {len(summary.ingest.failures)} unreadable archive files:")
        lines.extend(f"  {f.path}: {f.error_type}: {f.message}" for f in summary.ingest.failures)
    if summary.ingest is not None and summary.ingest.replaced:
        lines.append(f"replaced {len(summary.ingest.replaced)} changed archive files:")
        lines.extend(f"  {r.path}: {r.previous_id} -> {r.acquisition_id}" for r in summary.ingest.replaced)
    if summary.ingest is not None and summary.ingest.missing:
        lines.append(f"{len(summary.ingest.missing)} archive files are gone (their acquisitions are kept):")
        lines.extend(f"  {m.path}: {m.acquisition_id}" for m in summary.ingest.missing)
    count = len(summary.acquisition_ids)
    invalid = summary.statistics.n_invalid
    lines += [
        "",
        f"campaign store:   {summary.store}  ({count} acquisition{'' if count == 1 else 's'}"
        + (f"; {invalid} pixels without data left out" if invalid else "")
        + ")",
    ]
    labels = {"composite": "composites:", "bands": "k-band cubes:"}
    for kind, path in (summary.products or {"composite": summary.output}).items():
        counts = summary.exported_by_product.get(kind, summary.exported)
        done = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
        lines.append(f"{labels.get(kind, kind + ':'):<17} {path}  ({done or exported})")
    if summary.geotiff_dir:
        lines.append(f"GeoTIFFs:         {summary.geotiff_dir}/<product>/<acquisition>.tif")
    if summary.previews_dir:
        lines.append(f"RGB previews:     {summary.previews_dir}/<acquisition>.png")
    lines.append("plots:            " + ("\n                  ".join(summary.plots) or "none"))
    lines += [
        f"MLflow:           {summary.tracking_uri}",
        f"  experiment {summary.experiment!r}, run {summary.mlflow_run_id}",
    ]
    lines.append(f"  {_ui_hint(summary.tracking_uri, summary.mlflow_link)}")
    if summary.flow_run_id:
        lines.append(f"Prefect flow run: {summary.flow_run_id}")
    print("\n".join(lines))


def _mlflow_command() -> str:
    """The ``mlflow`` command of this installation, as a user can paste it from any folder: the script
    beside the running interpreter (the venv's ``bin/``), else ``python -m mlflow`` of it."""
    script = Path(sys.executable).parent / "mlflow"
    return shlex.quote(str(script)) if script.is_file() else f"{shlex.quote(sys.executable)} -m mlflow"


def _with_terminal_progress(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """``command`` drawing a progress bar of long steps (epochs, compared selectors) on an interactive
    terminal; in a pipe or log file the per-step log lines are the progress."""

    def run(args: argparse.Namespace) -> int:
        if not sys.stderr.isatty():
            return command(args)
        from bandselect.progress import TerminalBar, progress_sink

        with progress_sink(TerminalBar(sys.stderr)):
            return command(args)

    return run


def _cmd_demo(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(
            f"--dir {directory}",
            expected="a folder (created when missing)",
            found="a file",
            fix="pass a folder path, e.g. --dir .demo",
        )
    _create_home(_flow_environment(directory / "prefect"))
    from bandselect.flows import select_bands
    from bandselect.flows.config import demo_config
    from bandselect.names import ATTR_DISCRIMINATIVE_BANDS
    from bandselect.synthetic import write_campaign

    if not args.verbose:
        quiet_console()

    config = demo_config(directory)
    print(f"writing a synthetic campaign to {config.store} ...")
    campaign = write_campaign(
        config.store, n_acquisitions=3, height=96, width=128, seed=0, anomaly_fraction=0.01
    )
    print(campaign_summary(config.store))
    first = campaign.open(campaign.ids()[0])
    bands = list(first.attrs[ATTR_DISCRIMINATIVE_BANDS])
    wavelengths = first["wavelength"].values[bands]
    planted = "planted answer: anomalies differ in bands " + ", ".join(
        f"{b} ({w:.0f} nm)" for b, w in zip(bands, wavelengths, strict=True)
    )
    print("running the select-bands flow (Prefect ephemeral API; the first start takes ~15 s) ...")
    summary = select_bands(config)
    found = [i for i in summary.selection.indices if i in bands]
    planted += (
        f"\n  {len(found)} of {len(summary.selection.indices)} selected bands are planted bands; the band "
        "scores plot shows how each band separates anomalies (a trained RX pipeline may prefer bands that "
        "whiten the background over the planted ones)"
    )
    _print_flow_summary(summary, planted)
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    home = _flow_environment(Path(args.config).resolve().parent / ".prefect", args.servers)
    # Only the modules of the flow that runs (the comparison's evaluation stack is not loaded otherwise).
    from bandselect.flows.config import ProcessCampaignConfig, SelectBandsConfig, load_config

    def quiet() -> None:
        # After the flow module's import: importing Prefect installs the console handlers filtered here.
        if not args.verbose:
            quiet_console()

    # Every config is validated before anything is created (the Prefect home included).
    if args.flow == "compare-selectors":
        from bandselect.flows.compare_selectors import CompareSelectorsConfig, compare_selectors

        comparison = CompareSelectorsConfig.from_yaml(args.config)
        _create_home(home)
        quiet()
        _print_comparison(compare_selectors(comparison))
        return EXIT_OK
    # The flow modules import Prefect, which creates its home: imported once the config is valid. The
    # flow's plan runs here first too (it runs again inside the flow run, for deployments): a config that
    # cannot work (no store, a pipeline that does not fit the bands, an unreachable scheduler) fails in
    # seconds, before Prefect's temporary server has started (≈ 15 s) and before anything is created.
    from bandselect.flows.plan import plan_flow

    if args.flow == "process-campaign":
        campaign_config = load_config(args.config, ProcessCampaignConfig)
        plan_flow(campaign_config)
        _create_home(home)
        from bandselect.flows.process_campaign import process_campaign

        quiet()
        summary = process_campaign(campaign_config)
    else:
        config = load_config(args.config, SelectBandsConfig)
        plan_flow(config)
        _create_home(home)
        from bandselect.flows.select_bands import select_bands

        quiet()
        summary = select_bands(config)
    _print_flow_summary(summary)
    return EXIT_OK


# -- servers ---------------------------------------------------------------------------------------------
def _add_servers(subparsers: argparse._SubParsersAction) -> None:
    from bandselect.servers import configure_parser

    parser = subparsers.add_parser(
        "servers",
        help="start, stop or check Prefect, MLflow and Dask servers on 127.0.0.1",
        description="Server mode: Prefect server, MLflow server and a Dask scheduler + worker (and, with "
        "--worker-pool, a Prefect process worker), state and logs under --dir. `start` prints the "
        "variables to export (PREFECT_API_URL, MLFLOW_TRACKING_URI, BANDSELECT_DASK_ADDRESS); "
        'eval "$(bandselect servers env)" sets them. See deployments/README.md.',
    )
    configure_parser(parser)
    parser.set_defaults(func=_cmd_servers)


def _cmd_servers(args: argparse.Namespace) -> int:
    from bandselect.servers import run_command

    return run_command(args)


# -- report ----------------------------------------------------------------------------------------------
def _add_report(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write an HTML page of an MLflow run (a comparison: with its child runs)",
        description="Download an MLflow run's artifacts (and its child runs' for a selector comparison) and "
        "write a self-contained HTML page with its plots, leaderboard and selection; prints the page's path.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="MLflow run id (the parent run of a comparison)")
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite under ./.mlflow)",
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (default report-RUN_ID)")
    parser.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from bandselect._prefect_env import set_local_defaults
    from bandselect.tracking.report import write_run_report

    set_local_defaults()  # no MLflow progress bar: stdout is the page's path
    print(write_run_report(args.run_id, tracking_uri=args.tracking_uri, out_dir=args.out))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(console_main())

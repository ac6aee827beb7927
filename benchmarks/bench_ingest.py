"""Ingest benchmark: a >= 4 GiB synthetic ENVI cube into a campaign store, with bounded memory.

Writes a synthetic VNIR scene (bandselect.synthetic, 61 bands, float32, BIL) to a temporary folder block
by block, ingests it in a child process measured by ``/usr/bin/time -v`` (or ``getrusage`` of the child
where that is missing), checks rows of the store against the source, and writes wall time, throughput and
peak resident memory to ``benchmarks/results/ingest.json``. Goal: peak RSS below 1 GB.

    python benchmarks/bench_ingest.py                 # 4 GiB, temporary data removed afterwards
    python benchmarks/bench_ingest.py --size-gib 0.5  # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from bench_common import machine_info, write_results

from bandselect.synthetic import SceneGenerator

RESULTS = Path(__file__).resolve().parent / "results" / "ingest.json"
GOAL_PEAK_RSS_BYTES = 1_000_000_000

_CHILD = """
import json, sys, time
from bandselect.store import ingest
start = time.perf_counter()
ids = ingest([sys.argv[1]], sys.argv[2], chunk_yx=int(sys.argv[3]))
print(json.dumps({"ids": ids, "wall_s": time.perf_counter() - start}))
"""


def write_envi_source(directory: Path, height: int, width: int, n_bands: int, block_rows: int) -> Path:
    """Write a synthetic BIL float32 ENVI image block by block; return its header."""
    generator = SceneGenerator(height, width, n_bands=n_bands, seed=2026, anomaly_fraction=0.002)
    data = directory / "scene.bil"
    with open(data, "wb") as handle:
        for y0 in range(0, height, block_rows):
            cube, _ = generator.rows(y0, min(height, y0 + block_rows))
            # BIL: for each row, band after band of one line of samples.
            handle.write(np.ascontiguousarray(cube.transpose(0, 2, 1)).astype("<f4").tobytes())
    wavelengths = ", ".join(f"{w:.1f}" for w in generator.wavelengths_nm)
    header = directory / "scene.hdr"
    header.write_text(
        "ENVI\n"
        f"samples = {width}\nlines = {height}\nbands = {n_bands}\nheader offset = 0\n"
        "file type = ENVI Standard\ndata type = 4\ninterleave = bil\nbyte order = 0\n"
        f"wavelength units = Nanometers\nwavelength = {{ {wavelengths} }}\n"
    )
    return header


def run_ingest(header: Path, store: Path, chunk: int) -> tuple[dict[str, object], int, str]:
    """Ingest in a child process; return its JSON report, its peak RSS in bytes and how it was measured."""
    command = [sys.executable, "-c", _CHILD, str(header), str(store), str(chunk)]
    time_binary = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    if time_binary:
        completed = subprocess.run([time_binary, "-v", *command], capture_output=True, text=True, check=True)
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", completed.stderr)
        if match is None:
            raise RuntimeError(f"could not read the peak RSS from /usr/bin/time:\n{completed.stderr}")
        peak, method = int(match.group(1)) * 1024, "/usr/bin/time -v (max RSS of the child)"
    else:
        completed = subprocess.run(command, capture_output=True, text=True, check=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        method = "getrusage(RUSAGE_CHILDREN).ru_maxrss"
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return report, peak, method


def spot_check(header: Path, store: Path, acquisition_id: str, shape: tuple[int, int, int]) -> int:
    """Compare a few rows of the store with the source file; return how many rows were checked."""
    from bandselect.store import open_campaign

    height, width, n_bands = shape
    cube = open_campaign(store).open(acquisition_id)["cube"]
    rows = sorted({0, 1, height // 3, height // 2, height - 1})
    with open(header.with_suffix(".bil"), "rb") as handle:
        for row in rows:
            handle.seek(row * n_bands * width * 4)
            expected = np.frombuffer(handle.read(n_bands * width * 4), dtype="<f4").reshape(n_bands, width).T
            if not np.array_equal(cube[row].values, expected):
                raise AssertionError(f"row {row} of the store differs from the source")
    return len(rows)


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-gib", type=float, default=4.0, help="source size in GiB (default 4)")
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--bands", type=int, default=61)
    parser.add_argument("--chunk", type=int, default=256, help="spatial chunk of the store")
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary data goes")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data")
    args = parser.parse_args(argv)

    row_bytes = args.width * args.bands * 4
    height = int(np.ceil(args.size_gib * 2**30 / row_bytes / args.chunk)) * args.chunk
    workdir = Path(tempfile.mkdtemp(prefix="bandselect-bench-", dir=args.workdir))
    try:
        start = time.perf_counter()
        header = write_envi_source(workdir, height, args.width, args.bands, block_rows=args.chunk)
        source_bytes = header.with_suffix(".bil").stat().st_size
        generate_s = time.perf_counter() - start
        print(
            f"source: {height}×{args.width}×{args.bands} float32 BIL, {source_bytes / 2**30:.2f} GiB "
            f"written in {generate_s:.0f} s",
            flush=True,
        )
        store = workdir / "campaign.zarr"
        report, peak, method = run_ingest(header, store, args.chunk)
        wall = float(report["wall_s"])  # type: ignore[arg-type]
        [acquisition_id] = report["ids"]  # type: ignore[misc]
        checked = spot_check(header, store, acquisition_id, (height, args.width, args.bands))
        result = {
            "benchmark": "ingest",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": {
                "format": "ENVI BIL float32 (synthetic VNIR scene)",
                "shape_yxc": [height, args.width, args.bands],
                "bytes": source_bytes,
                "gib": round(source_bytes / 2**30, 3),
            },
            "store": {"chunk_yx": [args.chunk, args.chunk], "bytes_on_disk": directory_bytes(store)},
            "wall_s": round(wall, 2),
            "throughput_mb_per_s": round(source_bytes / wall / 1e6, 1),
            "peak_rss_bytes": peak,
            "peak_rss_mb": round(peak / 1e6, 1),
            "peak_rss_method": method,
            "goal_peak_rss_mb": GOAL_PEAK_RSS_BYTES / 1e6,
            "goal_met": peak < GOAL_PEAK_RSS_BYTES,
            "rows_spot_checked_bit_exact": checked,
            "machine": {
                **machine_info(),
                "note": "source file freshly written (likely in the page cache); wall time includes the "
                "source sha256, the NaN check, the content digest and zstd compression",
            },
        }
        write_results(args.output, result)
        return 0 if result["goal_met"] else 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

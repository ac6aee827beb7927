"""Run every benchmark in turn (each in its own process, as a user would), then rewrite the README's
results section from the JSON files they write.

``make bench`` calls this. Expect about 10 minutes on 2 cores (the ingest and statistics benchmarks each
write and read a ≥ 4 GB store in a temporary folder, removed afterwards).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = (
    "bench_ingest",
    "bench_stats",
    "bench_scale",
    "bench_quality",
    "bench_training",
    "bench_flows",
    "bench_small_run",
)


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        completed = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py")], cwd=ROOT)
        if completed.returncode != 0:
            failed.append(name)
    subprocess.run([sys.executable, "-m", "benchmarks.summarize", "--write-readme"], cwd=ROOT, check=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

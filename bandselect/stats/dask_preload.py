"""Ready a Dask scheduler or worker for statistics jobs at its start.

Started as ``dask scheduler ... --preload bandselect.stats.dask_preload`` (and ``dask worker``). A
statistics job's tasks name functions of :mod:`bandselect.stats` and :mod:`bandselect.store` (the
chunk reader). The scheduler unpickles the graph it is sent and each worker the tasks it runs, so both
import those modules (and numba's compiled kernels, loaded at import) on the first job they see. After
``bandselect servers start`` that first job of a 100 × 100 × 189 store took 5.4 s against 0.9 s for the
next one; with this module preloaded in the scheduler and the worker, 0.7 s (this project's 2-core
machine, a fresh client process each time; preloaded in the worker alone, 3.0 s). Server mode
(:mod:`bandselect.servers`) and the compose file start the scheduler and the workers with it.
"""

from __future__ import annotations

import bandselect.stats.compute
import bandselect.store.chunk_reader

__all__ = ["PRELOADED"]

#: The modules a statistics graph unpickles, imported here.
PRELOADED = (bandselect.stats.compute.__name__, bandselect.store.chunk_reader.__name__)

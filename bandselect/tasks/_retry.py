"""Which task failures are retried: only those another attempt can fix.

A bandselect error (bad input, an inconsistent store or pipeline, a config that cannot work) fails the
same way every time, so retrying it only delays the message and repeats its traceback; the same holds
for running out of memory on a request that is too large. Anything else (a dropped connection to
MLflow or the Dask scheduler, a file system hiccup) is retried as the task's ``retries`` say.
"""

from __future__ import annotations

from typing import Any

from bandselect.errors import BandSelectError

__all__ = ["DETERMINISTIC", "retry_transient"]

#: Failures that another attempt would repeat exactly.
DETERMINISTIC: tuple[type[BaseException], ...] = (BandSelectError, MemoryError)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry unless the failure is :data:`DETERMINISTIC`."""
    error = getattr(state, "data", None)
    return not isinstance(error, DETERMINISTIC)

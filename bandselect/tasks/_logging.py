"""The logger of the current Prefect run, or the module logger when a task body runs via ``.fn()``."""

from __future__ import annotations

import logging

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger


def run_logger(name: str) -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run; ``logging.getLogger(name)`` outside one."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)

"""How the command line ends: one message and an exit code, tracebacks only with ``--verbose``.

Exit codes: 0 done; 2 the input is at fault (any bandselect error but :class:`ResourceError`: bad
files, configs, stores, pipelines); 1 the environment is at fault (a server unreachable, the disk full,
out of memory, a broken pipe) or an unexpected error; 130 interrupted.

Flows log through Prefect, whose console handler prints every failure with its traceback (the task's,
then the flow's). Without ``--verbose`` the console shows no tracebacks and not the failure records of
a bandselect error at all: the command prints that error once, at the end. The Prefect API (the UI)
still receives every record with its traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import traceback
from collections.abc import Callable

from bandselect.errors import BandSelectError, ResourceError

__all__ = [
    "EXIT_ENVIRONMENT",
    "EXIT_INPUT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "quiet_console",
    "run_reporting_errors",
]

EXIT_OK = 0
EXIT_ENVIRONMENT = 1
EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130


def _cause_chain(error: BaseException) -> list[BaseException]:
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    return chain


def _names() -> set[str]:
    """Names of bandselect's error classes, as Prefect's state messages spell them (``ConfigError:``)."""
    found, todo = set(), [BandSelectError]
    while todo:
        cls = todo.pop()
        found.add(f"{cls.__name__}:")
        todo.extend(cls.__subclasses__())
    return found


class _ConsoleFilter(logging.Filter):
    """Drops records of a bandselect error (the command prints it once, at the end)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and any(isinstance(e, BandSelectError) for e in _cause_chain(error)):
            return False
        message = record.getMessage()
        # Prefect's final state lines of a run that failed on a bandselect error repeat its message.
        return not (message.startswith("Finished in state Failed") and any(n in message for n in _names()))


class _NoTraceback(logging.Formatter):
    """Formats with the wrapped formatter, without the traceback (left on the record for the API)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self._inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self._inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def quiet_console() -> None:
    """Apply the non-verbose console rules to the handlers that print to the terminal."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in ("prefect", "prefect._internal"))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler.formatter, _NoTraceback):
                handler.addFilter(_ConsoleFilter())
                handler.setFormatter(_NoTraceback(handler.formatter))


def _say(command: str, text: str) -> None:
    print(f"bandselect {command}: error: {text}", file=sys.stderr, flush=True)


def run_reporting_errors(command: str, body: Callable[[], int], *, verbose: bool) -> int:
    """Run ``body`` and turn what it raises into one message and an exit code (see the module)."""
    hint = "" if verbose else " (run with --verbose for the traceback)"
    try:
        return int(body())
    except ResourceError as error:
        code, text, failure = EXIT_ENVIRONMENT, str(error), error
    except BandSelectError as error:
        code, text, failure = EXIT_INPUT_ERROR, str(error), error
    except KeyboardInterrupt:
        _say(command, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`bandselect info S | head`): stop quietly; stdout is unusable now.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ENVIRONMENT
    except MemoryError as error:
        code, text, failure = EXIT_ENVIRONMENT, "out of memory" + hint, error
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        name = errno.errorcode.get(error.errno or 0, type(error).__name__)
        code, text, failure = EXIT_ENVIRONMENT, f"{error.strerror or error}{where} [{name}]{hint}", error
    except Exception as error:  # noqa: BLE001 - the last resort: an unexpected error, said in one line
        code, text, failure = EXIT_ENVIRONMENT, f"unexpected {type(error).__name__}: {error}{hint}", error
    if verbose:
        # Printed here, after the handler: the exception is no longer "current", so it is passed.
        traceback.print_exception(failure, file=sys.stderr)
    _say(command, text)
    return code

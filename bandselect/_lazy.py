"""Package attributes imported on first use (PEP 562), written once for every lazy package.

``bandselect.flows``, ``bandselect.tasks`` and ``bandselect.stats`` keep their heavy modules (Prefect
tasks, the evaluation stack, Dask and xarray) unloaded until a name of them is used, so that running one
flow, or ``fit()`` in a notebook, imports only what it needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_attributes(
    package: str, modules: Mapping[str, str], namespace: MutableMapping[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose names ``modules`` maps to their modules.

    Parameters
    ----------
    package
        The package's ``__name__`` (for the error message).
    modules
        Attribute name → the module that defines it.
    namespace
        The package's ``globals()``: a loaded value is stored there, so later lookups skip ``__getattr__``.

    Examples
    --------
    >>> namespace: dict[str, object] = {}
    >>> getattr_, dir_ = lazy_attributes("demo", {"sqrt": "math"}, namespace)
    >>> getattr_("sqrt")(4.0), "sqrt" in namespace, dir_()
    (2.0, True, ['sqrt'])
    """

    def module_getattr(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def module_dir() -> list[str]:
        return sorted(set(namespace) | set(modules))

    return module_getattr, module_dir

"""The "did you mean ...?" hint of the pipeline package's error messages, written once.

Bottom of the package (like ``node.py``): imports nothing of bandselect.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"did you mean 'a' or 'b'? "`` for the close matches of ``name`` among ``candidates``, else ``""``.

    The trailing space lets a caller put the hint in front of the rest of a fix.

    Examples
    --------
    >>> did_you_mean("selectr", ["selector", "top_k"])
    "did you mean 'selector'? "
    >>> did_you_mean("zzz", ["selector"])
    ''
    """
    close = difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""

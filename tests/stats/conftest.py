"""Fixtures of the statistics tests."""

from __future__ import annotations

import numpy as np
import pytest
from stats_data import planted


@pytest.fixture
def planted_data() -> tuple[np.ndarray, np.ndarray]:
    return planted()

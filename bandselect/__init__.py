"""bandselect: hyperspectral band selection."""

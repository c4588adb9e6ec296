"""Root pytest configuration: notebooks in notebooks/ run through nbval as part of plain `pytest`."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    # Equivalent of `--nbval-lax --nbval-current-env`, set here so that plain `pytest` (the README's command) runs
    # the notebooks, and so that `-p no:nbval` still works for quick runs of the unit tests.
    option = config.option
    if hasattr(option, "nbval_lax") and not getattr(option, "nbval", False):
        option.nbval_lax = True
        option.nbval_current_env = True

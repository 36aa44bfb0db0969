"""Fixtures of the test suite; the session (``spark``) lives in the repository's root ``conftest.py``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_root(tmp_path: Path) -> str:
    """A fresh data root for a job run, as the jobs' --data-root."""
    return str(tmp_path / "data")

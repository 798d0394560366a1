"""Shared pytest configuration: every test gets its own temp directory for databases."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_path(tmp_path):
    """A fresh SQLite database path inside the test's own temp directory."""
    return tmp_path / "runs.db"

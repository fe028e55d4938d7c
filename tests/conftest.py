"""Fixtures shared by the test files."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli_env(monkeypatch):
    """Run the CLI as a user would from the project root, with W&B off."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(ROOT)

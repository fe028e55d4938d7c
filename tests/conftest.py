"""Fixtures shared by the test files."""

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli_env(monkeypatch):
    """Run the CLI as a user would from the project root, with W&B off."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(ROOT)


@pytest.fixture
def one_thread():
    """Tiny nets run faster on one thread (OpenMP threads spin on a busy shared CPU); restored after.
    A test file opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

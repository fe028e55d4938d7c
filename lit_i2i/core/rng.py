"""Random states: running something without moving a seeded run's random streams."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch


@contextlib.contextmanager
def same_random_state(cuda: bool = False):
    """Whatever runs inside leaves the python, numpy and torch (CPU; with ``cuda`` the current CUDA device's too)
    random states as they were, so that checking or evaluating does not change a seeded run."""
    py, npy = random.getstate(), np.random.get_state()
    devices = [torch.cuda.current_device()] if cuda and torch.cuda.is_available() else []  # this process's GPU
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)

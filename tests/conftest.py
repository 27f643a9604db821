"""Shared fixtures: the real data sets of ``../shared/data`` (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

_DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_dir() -> Path | None:
    """Return the folder of real data sets, or ``None`` when it is absent.

    The folder is taken from ``SKLEARN_MTML_DATA`` when that is set, else
    ``../shared/data`` beside the repository.
    """
    path = Path(os.environ.get("SKLEARN_MTML_DATA", _DEFAULT))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the real data sets; skips the test cleanly when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip(
            "real data folder not found: set SKLEARN_MTML_DATA or place it at ../shared/data"
        )
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_process():
    """Run torch and BLAS on one thread during the tests.

    The test networks are tiny and CI machines have 2 shared cores: multithreaded OpenMP/BLAS
    spins and runs 10x+ slower there. Tests that check parallelism (``n_jobs``) set their own.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(previous)

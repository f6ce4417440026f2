"""Shared fixtures: one real training run of the tiny scenario, made once per test session;
the BLAS on two threads for a test (a step then goes in halves)."""

from __future__ import annotations

import os

# As fabric_cli/__init__.py does for users: one BLAS thread, set before any test imports numpy.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

import shutil
from pathlib import Path

import pytest

from fabric_cli.scenario import load_scenario
from fabric_cli.training.trainer import Trainer


@pytest.fixture(scope="session")
def tiny_run_master(tmp_path_factory) -> Path:
    """A finished run of the tiny scenario (a few seconds). Treat it as read-only."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    trainer = Trainer(load_scenario("tiny"), run_dir)
    trainer.prepare()
    result = trainer.run()
    assert result.status == "finished"
    return run_dir


@pytest.fixture
def tiny_run(tiny_run_master: Path, tmp_path: Path) -> Path:
    """A private copy of the finished tiny run that a test may modify."""
    copy = tmp_path / "runs" / "tiny"
    shutil.copytree(tiny_run_master, copy, symlinks=True)
    return copy


@pytest.fixture
def two_threads():
    """Two BLAS threads for the test, the count as it was after."""
    from fabric_cli.nn.blas import blas_threads, set_blas_threads

    before = blas_threads()
    set_blas_threads(2)
    yield
    set_blas_threads(before)

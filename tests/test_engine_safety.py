"""Kernels indexing outside their arrays for some parameters only: an error, never a crash."""

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("where", ["observations", "statistic"])
@pytest.mark.parametrize("far", [0, 10**6])
def test_writes_past_an_output_are_errors_not_crashes(where, far):
    run = subprocess.run([sys.executable, str(HERE / "_oob_kernels.py"), where, str(far)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]  # the process survives
    line = run.stdout.strip().splitlines()[-1]
    assert line.startswith(("SimulationError", "StatisticsError")) and "IndexError" in line, line
    if where == "observations":
        assert "observation kernel" in line and "mu: 8" in line

"""Kernels indexing outside their arrays for some parameters only: an error, never a crash."""

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("where", ["observations", "statistic"])
def test_writes_past_an_output_are_errors_not_crashes(where):
    # One row past the output, then a million rows past, only for a large parameter value.
    run = subprocess.run([sys.executable, str(HERE / "_oob_kernels.py"), where, "0", str(10**6)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]  # the process survives both
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        assert line.startswith("KernelError") and "indexes outside its arrays at line" in line, line  # stops the run, naming the kernel
        assert "np.int" not in line and "group" not in line, line  # plain numbers; no groups in this model
        if where == "observations":
            assert "observation kernel" in line and "mu: 8" in line and "`y[n + int(args[0]), 0] = 1.0" in line
        else:
            assert "Unit statistic y.first" in line and "`out[int(args[0])] = 1.0" in line


@pytest.mark.parametrize("where", ["reads", "reads-three-level"])
def test_reads_past_an_input_are_named_as_such(where):
    # A kernel reading x[k, 1] of one covariate was said to write outside y, "for group 0" of a
    # model without groups.
    run = subprocess.run([sys.executable, str(HERE / "_oob_kernels.py"), where, "0", str(10**6)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 2, lines
    for line, index in zip(lines, (1, 10**6 + 1)):
        assert line.startswith("KernelError: The observation kernel indexes outside its arrays at line"), line
        assert "`y[k, 0] += x[k, 1 + int(args[0])]" in line and f"index {index} is out of bounds for axis 1 with size 1" in line
        assert "x is 5 x 1 (observations x covariates x0)" in line and "writes" not in line, line
        assert ("for group 0 of the unit in simulation 0, unit 0" in line) == (where == "reads-three-level"), line


def test_check_mode_compiles_everything_bounds_checked_into_its_own_cache(tmp_path):
    import os

    env = {**os.environ, "SIMFIT_CHECK": "1", "HOME": str(tmp_path)}
    env.pop("NUMBA_BOUNDSCHECK", None)
    env.pop("NUMBA_CACHE_DIR", None)
    code = "import simfit, numba; print(numba.config.BOUNDSCHECK, numba.config.CACHE_DIR)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    flag, cache = run.stdout.split()
    assert flag == "1" and cache.startswith(str(tmp_path)) and "checked" in cache

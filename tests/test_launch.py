"""Ctrl-C during compiled code, from Python: a launch over many units stops at the next unit and
simfit runs again; a kernel in an endless loop ends a script with a message saying where, and an
interactive session at a second Ctrl-C (the command line: tests/test_cli.py)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import simfit
from simfit import launch
from simfit.models import random_intercept

SCRIPT = '''
import sys
import warnings

import numpy as np
from numba import njit

import simfit
from simfit.models import random_intercept
from simfit.random import normal


@njit(cache=True)
def endless(psi, theta, x, args, rng, y):
    k = 0.0
    while psi[0] > 5.0:  # never returns for mu > 5 (the loop does work: it is not optimised away)
        k += normal(rng)
    for j in range(y.shape[0]):
        y[j, 0] = theta[0] + psi[2] * normal(rng) + 0.0 * k


@njit(cache=True)
def slow(psi, theta, x, args, rng, y):
    k = 0.0
    for _ in range(200_000 if psi[0] > 5.0 else 0):  # about a millisecond per unit for mu > 5
        k += normal(rng)
    for j in range(y.shape[0]):
        y[j, 0] = theta[0] + psi[2] * normal(rng) + 0.0 * k


mode = sys.argv[1]
ri = random_intercept.model()
model = simfit.Model(ri.params, ri.levels, simfit.Observations(endless if mode == "endless" else slow, values=("y",)))
stats = random_intercept.statistics()
design = simfit.Panel.balanced(20_000 if mode == "slow" else 20, 5)
sim = simfit.Simulator(model, design, stats)
data = simfit.Simulator(ri, design).simulate({"mu": 8.0, "tau": 0.5, "sigma": 1.0}, seed=2).panel(0)
warnings.simplefilter("ignore")
sim.statistics({"mu": 1.0, "tau": 0.5, "sigma": 1.0}), sim.observed(data)  # compiled before the signal
print("ready", flush=True)
try:
    if mode == "endless":
        simfit.fit(model, data, stats, start={"mu": 8.0}, n_sims=4, bootstrap=0)
    else:
        sim.statistics({"mu": 8.0, "tau": 0.5, "sigma": 1.0}, n_sims=50)
    print("not interrupted", flush=True)
except KeyboardInterrupt as exc:
    print(f"interrupted: {exc}", flush=True)
try:
    sim.statistics({"mu": 1.0, "tau": 0.5, "sigma": 1.0})
    print("runs again", flush=True)
except simfit.KernelError as exc:
    print(f"refused: {exc}", flush=True)
'''


def _interrupt_script(tmp_path: Path, mode: str, interactive: bool = False, after: float = 2.0):
    """Run the script in ``mode`` and send SIGINT ``after`` seconds past its "ready" (and, when
    ``interactive``, a second one after its message); its exit status, stdout and stderr lines, and
    the seconds from the (last) SIGINT to its exit."""
    (tmp_path / "script.py").write_text(SCRIPT)
    argv = [sys.executable, *(["-i"] if interactive else []), str(tmp_path / "script.py"), mode]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
        time.sleep(after)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        if interactive:
            with pytest.raises(subprocess.TimeoutExpired):  # the session is not ended unasked
                proc.wait(timeout=2.5)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("Ctrl-C did not stop the script")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out.splitlines(), err, time.monotonic() - sent


def test_ctrl_c_ends_a_script_whose_kernel_loops_for_ever_saying_where(tmp_path):
    code, out, err, seconds = _interrupt_script(tmp_path, "endless")
    assert code == 130 and seconds < 5, (code, seconds, err[-2000:])
    assert "simfit: interrupted, but the simulation of" in err and "mu: 8" in err and "does not return" in err
    assert "Ending Python" in err


def test_in_an_interactive_session_a_second_ctrl_c_ends_it(tmp_path):
    code, out, err, seconds = _interrupt_script(tmp_path, "endless", interactive=True)
    assert code == 130 and seconds < 5, (code, seconds, err[-2000:])
    assert "Press Ctrl-C again to end Python" in err


def test_ctrl_c_stops_a_long_launch_at_the_next_unit(tmp_path):
    code, out, err, seconds = _interrupt_script(tmp_path, "slow")
    assert code == 0 and seconds < 5, (code, seconds, err[-2000:])
    assert out == ["interrupted: ", "runs again"], out  # simfit runs again after it


def test_an_engine_call_points_the_wakeup_fd_at_the_watchdog_only_while_it_runs():
    model, stats = random_intercept.model(), random_intercept.statistics()
    sim = simfit.Simulator(model, simfit.Panel.balanced(10, 4), stats)
    mine, _ = socket.socketpair()
    mine.setblocking(False)
    before = signal.set_wakeup_fd(mine.fileno())
    try:
        sim.statistics({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, n_sims=2)
        assert signal.set_wakeup_fd(mine.fileno()) == mine.fileno()  # restored
    finally:
        signal.set_wakeup_fd(before)
    assert launch._WATCHDOG is not None and launch._WATCHDOG.thread.is_alive() and not launch._RUNNING


def test_errors_of_engine_calls_reach_the_caller():
    model, stats = random_intercept.model(), random_intercept.statistics()
    sim = simfit.Simulator(model, simfit.Panel.balanced(10, 4), stats)
    with pytest.raises(simfit.ArgumentError, match="n_sims must be a positive integer"):
        sim.statistics({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, n_sims=0)
    assert not launch._RUNNING

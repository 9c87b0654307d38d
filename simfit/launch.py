"""Running compiled code so that Ctrl-C stops it.

Compiled code does not return to the interpreter before it is done, and Python runs its Ctrl-C
handler only between bytecodes: a kernel in an endless loop (for some parameter values) would hold
a fit for ever. The calls that run compiled code (building a :class:`~simfit.engine.Simulator`,
its statistics, simulations and observed statistics) are :func:`interruptible`:

* In a script or an interactive session (the default), the call runs where it is made, and for
  its duration the signal wakeup fd (:func:`signal.set_wakeup_fd`) points at a watchdog thread.
  The compiled drivers and the calls of single kernels release the GIL, so the watchdog runs
  while they do. At a Ctrl-C it sets :data:`CANCEL`, and the drivers skip their remaining units:
  a launch over many units returns within a unit's time and raises ``KeyboardInterrupt``, and
  simfit runs again. A kernel that does not return from its unit within a second cannot be
  stopped short of ending the process: in a script the watchdog says which kernel and which
  parameters, and ends the process (status 130); in an interactive session (a REPL, IPython,
  Jupyter) it says so and ends the process at a second Ctrl-C. No thread switch per call: the
  cost is a few system calls, well under a microsecond.
* On the command line (:data:`HARD_INTERRUPT`, set by ``simfit``), Ctrl-C during such a call ends
  the process at once (SIGINT's default action). Finished replications and draws are on disk.

Calls made on other threads (a threading backend) run where they are made; the main thread takes
the Ctrl-C. :func:`launch` runs one compiled driver, one at a time in the process.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager

import numba
import numpy as np

from simfit.errors import KernelError

__all__ = ["interruptible", "launch", "running", "HARD_INTERRUPT", "CANCEL", "SERIAL_WORK"]

#: Set by the command line: Ctrl-C during compiled code ends the process at once. Off in scripts
#: and notebooks, where the watchdog handles it.
HARD_INTERRUPT = False

#: Non-zero once Ctrl-C has interrupted compiled code: the drivers skip their remaining units.
CANCEL = np.zeros(1, dtype=np.int64)

#: Launches with less work than this (observations simulated, or unit rows aggregated) run on the
#: calling thread alone: waking the pool costs more than it saves, and much more when other
#: processes occupy the cores (a woken thread may wait a whole scheduler time slice).
SERIAL_WORK = 20_000

# Seconds compiled code is given to stop at its next unit before it is taken for a kernel that
# does not return.
_GRACE = 1.0

# Numba's default threading layer (workqueue) must not be entered from two Python threads at
# once: the compiled drivers are serialised, so that simfit can run under a threading backend.
_ENGINE_LOCK = threading.RLock()

# Compiled code running now, by thread: (token, what), ``what`` a function describing it ("the
# observation kernel at parameters {...}") for the watchdog's message.
_RUNNING: dict[int, tuple[int, object]] = {}
_TOKENS = itertools.count(1)
_RUNAWAY: tuple[int, str] | None = None  # compiled code on another thread that did not stop at a Ctrl-C
_DEPTH = 0  # nesting of interruptible calls on the main thread


def _describe(what) -> str:
    try:
        return what() if callable(what) else str(what)
    except Exception:  # a description must not hide the interrupt
        return "compiled code"


def _interactive() -> bool:
    return hasattr(sys, "ps1") or bool(sys.flags.interactive) or "IPython" in sys.modules


class _Watchdog:
    """A daemon thread that hears the signals arriving while an interruptible call runs (the
    wakeup fd is its socket then) and passes them on to the wakeup fd the call replaced."""

    def __init__(self) -> None:
        self.receive, self.send = socket.socketpair()
        self.send.setblocking(False)
        self.replaced = -1  # the wakeup fd in force outside simfit's calls (asyncio's, say)
        self.thread = threading.Thread(target=self._watch, name="simfit-watchdog", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while True:
            data = self.receive.recv(64)
            self._forward(data)
            if signal.SIGINT in data and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._interrupted()

    def _forward(self, data: bytes) -> None:
        """Pass signal bytes on to the wakeup fd that was in force outside simfit's calls."""
        if self.replaced >= 0:
            try:
                os.write(self.replaced, data)
            except OSError:
                pass

    def _wait_for_sigint(self, seconds: float) -> bool:
        """Whether another SIGINT arrives within ``seconds``."""
        self.receive.settimeout(seconds)
        try:
            while True:
                data = self.receive.recv(64)
                self._forward(data)
                if signal.SIGINT in data:
                    return True
        except (TimeoutError, OSError):
            return False
        finally:
            self.receive.settimeout(None)

    def _interrupted(self) -> None:
        global _RUNAWAY
        interrupted = {token: (ident, what) for ident, (token, what) in list(_RUNNING.items())}
        if not interrupted:
            return  # Python code is running: its KeyboardInterrupt comes by itself
        CANCEL[0] = 1  # the drivers stop at their next unit
        deadline = time.monotonic() + _GRACE
        while _still_running(interrupted) and time.monotonic() < deadline:
            time.sleep(0.01)
        stuck = _still_running(interrupted)
        if not stuck:
            return
        main = threading.main_thread().ident
        on_main = [token for token in stuck if interrupted[token][0] == main]
        token = on_main[0] if on_main else stuck[0]
        what = _describe(interrupted[token][1])
        if not on_main:  # a worker thread's kernel: the main thread takes its KeyboardInterrupt
            _RUNAWAY = (token, what)
            return
        message = (
            f"\nsimfit: interrupted, but {what} did not stop within {_GRACE:g} s: a kernel does not return (an "
            "endless loop for these parameter values?) and cannot be stopped short of ending Python. Make the kernel "
            "return, writing NaN, for the parameter values where it loops."
        )
        if _interactive():
            _say(message + " Press Ctrl-C again to end Python (this session), or wait for the kernel.")
            while _still_running({token: None}):
                if self._wait_for_sigint(0.25) and _still_running({token: None}):
                    _end(message)
        else:
            _end(message + " Ending Python.")


def _still_running(tokens) -> list[int]:
    """Which of these pieces of compiled code are still running."""
    now = {token for token, _ in list(_RUNNING.values())}
    return [token for token in tokens if token in now]


def _say(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except Exception:  # a closed or broken stderr at exit: nowhere left to report it
        pass


def _end(message: str) -> None:
    """End the process, from the watchdog, while the main thread is stuck in compiled code."""
    _say(message)
    try:
        sys.stdout.flush()
    except Exception:  # as above: the process ends either way
        pass
    os._exit(130)


_WATCHDOG: _Watchdog | None = None


def _after_fork() -> None:
    # A forked child has none of the parent's threads: it starts its own watchdog when it needs one.
    global _WATCHDOG, _RUNAWAY, _ENGINE_LOCK, _DEPTH
    _WATCHDOG, _RUNAWAY, _DEPTH, _ENGINE_LOCK = None, None, 0, threading.RLock()
    _RUNNING.clear()
    CANCEL[0] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def interruptible(func):
    """Make a call that runs compiled code stoppable by Ctrl-C (see the module's docstring)."""

    @functools.wraps(func)
    def call(*args, **kwargs):
        global _WATCHDOG, _DEPTH
        if _DEPTH or threading.get_ident() != threading.main_thread().ident:  # nested, or another thread
            return func(*args, **kwargs)
        if HARD_INTERRUPT:
            previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
            try:
                return func(*args, **kwargs)
            finally:
                if previous is not None:  # None: a handler not set from Python, which cannot be restored
                    signal.signal(signal.SIGINT, previous)
        if _WATCHDOG is None:
            _WATCHDOG = _Watchdog()
        if _RUNAWAY is None:
            CANCEL[0] = 0  # an earlier Ctrl-C's
        try:
            replaced = signal.set_wakeup_fd(_WATCHDOG.send.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not the main interpreter: no wakeup fd to listen on
            return func(*args, **kwargs)
        _WATCHDOG.replaced = replaced
        _DEPTH = 1
        try:
            return func(*args, **kwargs)
        finally:
            _DEPTH = 0
            _WATCHDOG.replaced = -1
            signal.set_wakeup_fd(replaced, warn_on_full_buffer=False)
            _RUNNING.pop(threading.get_ident(), None)

    return call


@contextmanager
def running(what):
    """The current thread runs compiled code in this block (a kernel called from Python): ``what()``
    is text such as "the observation kernel at parameters {...}", for the message if it does not
    return."""
    ident = threading.get_ident()
    _refuse_after_runaway()
    _RUNNING[ident] = (next(_TOKENS), what)
    try:
        yield
    finally:
        _RUNNING.pop(ident, None)


def _refuse_after_runaway() -> None:
    if _RUNAWAY is not None:
        raise KernelError(
            f"simfit cannot run compiled code now: {_RUNAWAY[1]} did not stop at a Ctrl-C and runs on in a "
            "background thread (a kernel in an endless loop?) until Python ends; restart Python, and make the kernel "
            "return, writing NaN, for the parameter values where it loops."
        )


def launch(driver, *args, work: int | None = None, what=None) -> None:
    """Run a compiled driver of :mod:`simfit._engine` on ``args`` and the cancel flag.

    One launch at a time in the process, on the calling thread alone when ``work`` is below
    :data:`SERIAL_WORK`; ``what`` as for :func:`running`. A kernel raising on the calling thread
    surfaces as SystemError from the driver; on the pool's threads it is lost. Either way the
    driver's status array tells, so the error is swallowed here and explained from the statuses by
    the caller. A launch that Ctrl-C cut short raises ``KeyboardInterrupt``.
    """
    _refuse_after_runaway()
    if not _ENGINE_LOCK.acquire(blocking=False):
        while not _ENGINE_LOCK.acquire(timeout=0.25):  # held by compiled code that does not return
            _refuse_after_runaway()
    global _RUNAWAY
    ident, token = threading.get_ident(), next(_TOKENS)
    try:
        threads = numba.get_num_threads()
        serial = work is not None and work < SERIAL_WORK and threads > 1
        if serial:
            numba.set_num_threads(1)
        _RUNNING[ident] = (token, what or "a compiled launch")
        try:
            driver(*args, CANCEL)
        except SystemError:
            pass
        finally:
            _RUNNING.pop(ident, None)
            if _RUNAWAY is not None and _RUNAWAY[0] == token:  # it has returned after all
                _RUNAWAY = None
            if serial:
                numba.set_num_threads(threads)
    finally:
        _ENGINE_LOCK.release()
    if CANCEL[0]:  # cut short by Ctrl-C: its outputs are unfinished
        _raise_interrupt()


def _raise_interrupt() -> None:
    if threading.get_ident() == threading.main_thread().ident:
        ctypes.pythonapi.PyErr_CheckSignals()  # raises the pending KeyboardInterrupt (and consumes it)
    raise KeyboardInterrupt

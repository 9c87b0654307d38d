"""Starts loky workers, prints their process ids, then dies by SIGKILL (tests/test_parallel.py)."""

import os
import signal

from simfit.parallel import run_parallel


def worker_pid(_):
    return os.getpid()


if __name__ == "__main__":
    pids = sorted(set(run_parallel(worker_pid, [(k,) for k in range(8)], n_jobs=2)))
    print(" ".join(map(str, pids)), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

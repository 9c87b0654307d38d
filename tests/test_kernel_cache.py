"""The disk cache of kernels notices a change in any function a kernel calls, user's or simfit's."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from numba import njit

from simfit import kernel_cache
from simfit.kernel_cache import dependency_stamp, import_closure, package_stamp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "simfit"


def run_python(code: str, cwd: Path) -> str:
    """Run ``code`` in a new interpreter (a new process: nothing compiled in memory) in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


LEAF = """
from numba import njit

SCALE = 1.0


@njit(cache=True)
def leaf(x):
    return x * SCALE
"""

MID = """
from numba import njit

import leaves


@njit(cache=True)
def mid(x):
    return leaves.leaf(x) + 0.0
"""

KERNEL = """
from numba import njit

from middle import mid


@njit(cache=True)
def kernel(psi, theta, x, args, rng, y):
    for j in range(y.shape[0]):
        y[j, 0] = mid(theta[0])
"""

RUN = """
import numpy as np

import model
from simfit.kernels import SIMULATE_SIGNATURE, compile_kernel

kernel, _ = compile_kernel(model.kernel, SIMULATE_SIGNATURE, "observation kernel")
y = np.zeros((2, 1))
kernel(np.zeros(1), np.array([3.0]), np.zeros((2, 1)), np.zeros(0), np.zeros(8, np.uint64), y)
print(y[0, 0], sum(kernel.stats.cache_hits.values()))
"""


def test_a_change_in_a_function_a_kernel_calls_from_another_file_is_compiled(tmp_path):
    # model.py's kernel calls middle.mid, which calls leaves.leaf: a change two files away.
    (tmp_path / "leaves.py").write_text(LEAF)
    (tmp_path / "middle.py").write_text(MID)
    (tmp_path / "model.py").write_text(KERNEL)
    assert run_python(RUN, tmp_path) == "3.0 0"  # compiled
    assert run_python(RUN, tmp_path) == "3.0 1"  # read back from the disk cache
    (tmp_path / "leaves.py").write_text(LEAF.replace("return x * SCALE", "return 2.0 * x * SCALE"))
    assert run_python(RUN, tmp_path) == "6.0 0"  # Numba's own stamp (model.py unchanged) would give 3.0
    assert run_python(RUN, tmp_path) == "6.0 1"
    (tmp_path / "leaves.py").write_text(LEAF.replace("return x * SCALE", "return 2.0 * x * SCALE").replace("1.0", "10.0"))
    assert run_python(RUN, tmp_path) == "60.0 0"  # a global constant, compiled in
    cached = sorted(p.name for p in (tmp_path / "__pycache__").glob("*.nbi"))
    assert cached and all(".simfit-" in name for name in cached)  # files of their own, named after the module
    assert any(name.startswith("leaves.leaf") for name in cached)  # callees keyed too: no stale link on the way


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_the_stamp_follows_the_code_as_loaded(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "stamp_helpers.py").write_text(
        "from numba import njit\n\nK = 2.0\n\n\n@njit\ndef helper(x):\n    return K * x\n\n\n@njit\ndef unused(x):\n    return x\n"
    )
    (tmp_path / "stamp_kernel.py").write_text(
        "from numba import njit\n\nimport stamp_helpers\n\n\n@njit\ndef kernel(x):\n    return stamp_helpers.helper(x)\n"
    )
    try:
        helpers = load(tmp_path / "stamp_helpers.py", "stamp_helpers")
        kernel = load(tmp_path / "stamp_kernel.py", "stamp_kernel").kernel
        first = dependency_stamp(kernel)
        assert dependency_stamp(kernel) == first
        helpers.unused = njit(lambda x: 2 * x)  # a function the kernel does not call
        assert dependency_stamp(kernel) == first
        helpers.K = 3.0  # a constant its callee reads
        assert dependency_stamp(kernel) != first
        helpers.K = 2.0
        assert dependency_stamp(kernel) == first
        (tmp_path / "stamp_helpers.py").write_text((tmp_path / "stamp_helpers.py").read_text().replace("K * x", "K * x + 1.0"))
        assert dependency_stamp(kernel) == first  # an edit not yet loaded: the loaded code is what compiles
        importlib.reload(helpers)
        assert dependency_stamp(kernel) != first
    finally:
        sys.modules.pop("stamp_helpers", None)
        sys.modules.pop("stamp_kernel", None)


def test_callees_in_closures_and_tuples_are_followed():
    @njit
    def double(x):
        return 2 * x

    @njit
    def triple(x):
        return 3 * x

    def make(f):
        @njit
        def kernel(x):
            return f(x)

        return kernel

    assert dependency_stamp(make(double)) != dependency_stamp(make(triple))
    assert dependency_stamp(make(double)) == dependency_stamp(make(double))


def test_simfit_kernels_are_stamped_with_the_sources_they_import():
    engine = import_closure(str(PACKAGE / "_engine.py"))
    names = {str(Path(f).relative_to(PACKAGE)) for f in engine}
    assert {"_engine.py", "random.py", "_ziggurat.py", "kernels.py"} <= names  # what its kernels call
    assert not names & {"estimation.py", "cli.py", "engine.py", "scenario.py"}  # editing these recompiles nothing
    from simfit import random

    stamp = random.normal._cache._cache_file._source_stamp
    assert stamp[1] == package_stamp(str(PACKAGE / "random.py"))


def test_the_package_stamp_is_installed_whether_numba_or_simfit_is_imported_first(tmp_path):
    check = "from simfit import random; print(type(random.normal._cache._impl.locator).__name__)"
    assert run_python("import simfit, sys; assert 'numba' not in sys.modules; " + check, tmp_path) == "PackageLocator"
    assert run_python("import numba, simfit; " + check, tmp_path) == "PackageLocator"


def test_the_import_closure_reads_top_level_imports_only(tmp_path):
    pkg = tmp_path / "simfit"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__", "a", "b", "c", "d", "sub/__init__", "sub/e"):
        (pkg / f"{name}.py").write_text("")
    (pkg / "a.py").write_text(
        "from simfit.b import x\nfrom simfit import (\n    c,\n)\nimport simfit.sub.e\n\n\ndef f():\n    from simfit import d\n"
    )
    files = {str(Path(f).relative_to(pkg)) for f in import_closure(str(pkg / "a.py"), str(tmp_path))}
    assert files == {"a.py", "b.py", "c.py", "__init__.py", "sub/e.py"}


def test_the_stamps_cost_milliseconds():
    from simfit.models import ddm

    started = time.perf_counter()
    for _ in range(20):
        dependency_stamp(ddm.model().observations.simulate)
    assert (time.perf_counter() - started) / 20 < 0.05
    for memo in (kernel_cache.package_stamp, kernel_cache._import_closure, kernel_cache._top_imports, kernel_cache._digest):
        memo.cache_clear()
    started = time.perf_counter()
    package_stamp(str(PACKAGE / "models" / "ddm.py"))  # the largest closure, files read afresh
    assert time.perf_counter() - started < 0.2


def test_a_numba_without_the_internals_used_warns_once_and_caches_by_its_own_rules(tmp_path):
    code = (
        "import warnings\n"
        "from numba.core import caching\n"
        "del caching._CacheLocator  # a name only simfit looks up after Numba is imported\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import simfit\n"
        "    from simfit import random\n"
        "    from simfit.kernel_cache import key_on_dependencies\n"
        "    key_on_dependencies(random.normal)\n"
        "print(len(caught), type(random.normal._cache).__name__, 'tested with' in str(caught[0].message))\n"
    )
    assert run_python(code, tmp_path) == "1 FunctionCache True"

"""The disk cache of compiled kernels, keyed on everything their machine code depends on.

Numba's ``cache=True`` keeps a function's machine code beside its source file and reuses it for
as long as *that file* is unchanged. The code of every function it calls is compiled into it, so
a change in a callee in another file (a user's model split over files, an edited editable install,
an upgrade that changed ``simfit/random.py`` but not ``simfit/_engine.py``) goes unseen: the stale
code runs. And the cache records the name of the module the file was loaded under, so the same
file loaded under another name (``import decay`` after ``simfit fit`` loaded ``decay.py``) could
not read it back.

Here the cache's stamp also covers the dependencies:

* simfit's own kernels (:func:`stamp_package_kernels`, from ``import simfit``): the source of every
  simfit module the kernel's module imports at its top, directly or not (:func:`package_stamp`),
  so an edited or upgraded simfit recompiles exactly the kernels whose sources changed.
* user kernels (:func:`key_on_dependencies`, when :func:`simfit.kernels.compile_kernel` compiles
  them): the code of the jitted functions they call, followed through globals, module attributes
  and closures, and the values of the constants they read (Numba compiles those in), as loaded in
  the process (:func:`dependency_stamp`). Their cache files are named after the module as well,
  so the same file loaded under two names keeps two caches instead of failing to read one.

Numba internals used (tested with Numba 0.61.2 and 0.68.1): ``numba.core.caching``'s
``_CacheLocator``, ``CacheImpl._locator_classes``, ``FunctionCache`` (its ``_impl``,
``_cache_path`` and ``_cache_file``) and ``IndexDataCacheFile(cache_path, filename_base,
source_stamp)``, and a dispatcher's ``_cache``. With a Numba that lacks them, simfit warns once and
leaves caching to Numba's own rules. ``NUMBA_CACHE_LOCATOR_CLASSES`` (Numba 0.68) replaces the
locator list and with it the stamp of simfit's own kernels. This module imports Numba only when
Numba is imported anyway: ``import simfit`` stays quick.
"""

from __future__ import annotations

import functools
import os
import sys
import types
import warnings

# hashlib and re are imported where used: `import simfit` runs this module and stays quick.

__all__ = ["stamp_package_kernels", "key_on_dependencies", "dependency_stamp", "package_stamp"]

_PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
_ROOT = os.path.dirname(_PACKAGE_DIR)
_TESTED = "0.61.2 and 0.68.1"
# Functions of these packages are Numba's to compile (or overloads it ships): not followed.
_FOREIGN = frozenset({"numpy", "numba", "llvmlite", "scipy", "builtins"}) | frozenset(sys.stdlib_module_names)


# ------------------------------------------------------------------ source files


@functools.cache
def _digest(path: str, mtime_ns: int, size: int) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def file_digest(path: str) -> str:
    """SHA-256 of a file's content, read again only when its time stamp or size changed."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return _digest(path, st.st_mtime_ns, st.st_size)


@functools.cache
def in_package(path: str) -> bool:
    """Whether ``path`` is a file of simfit itself."""
    return os.path.realpath(path).startswith(_PACKAGE_DIR + os.sep)


_TOP_IMPORT = r"^(?:from\s+(simfit[\w.]*)\s+import\s+(\([^)]*\)|[^\n]*)|import\s+(simfit[\w.]*))"


def _module_file(module: str, root: str) -> str | None:
    base = os.path.join(root, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def import_closure(path: str, root: str = _ROOT) -> frozenset[str]:
    """The source files of the package modules ``path`` imports at its top (``from simfit... import``
    and ``import simfit...`` at the start of a line), directly or not, itself included. A kernel
    reads its module's globals only, which imports inside functions do not bind: not followed."""
    return _import_closure(os.path.realpath(path), root)


@functools.cache
def _import_closure(path: str, root: str) -> frozenset[str]:
    files, todo = set(), [path]
    while todo:
        file = todo.pop()
        if file not in files:
            files.add(file)
            todo.extend(_top_imports(file, root))
    return frozenset(files)


@functools.cache
def _top_imports(file: str, root: str) -> tuple[str, ...]:
    import re

    try:
        with open(file, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return ()
    found = []
    for match in re.finditer(_TOP_IMPORT, text, re.M):
        module = match.group(1) or match.group(3)
        found.append(_module_file(module, root))
        for name in re.split(r"[\s,()]+", match.group(2) or ""):  # `from simfit import statistics`
            if name.isidentifier() and name != "as":
                found.append(_module_file(f"{module}.{name}", root))
    return tuple(f for f in found if f)


@functools.cache
def package_stamp(path: str) -> str:
    """The stamp of a simfit kernel defined in ``path``: the content of every file of its import
    closure (:func:`import_closure`), read once a process (the sources of the loaded modules)."""
    import hashlib

    files = import_closure(path)
    h = hashlib.sha256()
    for file in sorted(files):
        h.update(f"{os.path.relpath(file, _ROOT)}\0{file_digest(file)}\n".encode())
    return h.hexdigest()


# ------------------------------------------------------------------ what a user kernel calls


def _is_dispatcher(value) -> bool:
    return hasattr(value, "py_func") and type(value).__module__.startswith("numba.")


def _foreign(module_name) -> bool:
    return not isinstance(module_name, str) or module_name.split(".")[0] in _FOREIGN


def _code_names(code: types.CodeType, out: set[str]) -> set[str]:
    out.update(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # inner functions
            _code_names(const, out)
    return out


def _constant(value) -> str | None:
    """How a global value Numba compiles in as a constant enters the stamp (None: not one)."""
    np = sys.modules.get("numpy")  # not imported here: `import simfit` stays quick
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return repr(value)
    if np is None:
        return None
    if isinstance(value, np.generic):
        return repr(value)
    if isinstance(value, np.ndarray):
        import hashlib

        data = np.ascontiguousarray(value)
        return f"array {data.dtype.str} {data.shape} {hashlib.sha256(data.view(np.uint8)).hexdigest()}"
    return None


def _feed_code(h, code: types.CodeType) -> None:
    """What Numba compiles of a code object: its bytecode, names and constants (not its file name
    or line numbers), inner functions included."""
    h.update(code.co_code)
    h.update(getattr(code, "co_exceptiontable", b""))
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars, code.co_argcount,
                   code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(h, const)
        elif isinstance(const, frozenset):  # `x in {1, 2}`: its order varies between processes
            h.update(repr(sorted(map(repr, const))).encode())
        else:
            h.update(repr(const).encode())
        h.update(b"\0")


class _Dependencies:
    """What the compiled code of a function depends on, taken from the loaded functions (so an
    edit of their file after the import, in a notebook say, cannot leave the old code under the new
    stamp): the code of the jitted functions it calls, recursively, and the values of the globals
    they read; for simfit's own functions, :func:`package_stamp` of their file."""

    def __init__(self, py_func):
        self.parts: set[str] = set()
        self.dispatchers: list = []
        self._seen: set[int] = set()
        self._visit(py_func)

    def _visit(self, func) -> None:
        import hashlib

        if id(func) in self._seen:
            return
        self._seen.add(id(func))
        code = getattr(func, "__code__", None)
        if code is None:
            return
        where = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"
        if in_package(code.co_filename):  # simfit's: the stamp of its file covers what it calls
            self.parts.add(f"{where} package {package_stamp(code.co_filename)}")
            return
        h = hashlib.sha256()
        _feed_code(h, code)
        self.parts.add(f"{where} code {h.hexdigest()}")
        names = _code_names(code, set())
        scope = getattr(func, "__globals__", {})
        values = [(n, scope[n]) for n in sorted(names) if n in scope]
        values += [("<default>", func.__defaults__), ("<kwdefault>", tuple(sorted((func.__kwdefaults__ or {}).items())))]
        for cell in getattr(func, "__closure__", None) or ():
            try:
                values.append(("<closure>", cell.cell_contents))
            except ValueError:  # an empty cell
                pass
        for name, value in values:
            if isinstance(value, types.ModuleType):
                if _foreign(value.__name__):
                    continue
                for attr in sorted(names):  # `helpers.f(x)` reads the attribute f of the module
                    if attr in vars(value):
                        self._value(f"{where}:{name}.{attr}", vars(value)[attr])
            else:
                self._value(f"{where}:{name}", value)

    def _value(self, label: str, value) -> None:
        if _is_dispatcher(value):
            self.dispatchers.append(value)
            self._visit(value.py_func)
            return
        constant = _constant(value)
        if constant is not None:
            self.parts.add(f"{label}={constant}")
        elif isinstance(value, tuple):
            for k, item in enumerate(value):
                self._value(f"{label}[{k}]", item)
        elif isinstance(value, types.FunctionType):
            if not _foreign(value.__module__):
                self._visit(value)  # e.g. a @register_jitable helper
        elif isinstance(getattr(value, "_defn", None), types.FunctionType):
            if not _foreign(value._defn.__module__):
                self._visit(value._defn)  # an @intrinsic
        else:  # an enum member or a dtype (compiled in) by its value; anything else by its type
            import enum

            np = sys.modules.get("numpy")
            frozen = isinstance(value, enum.Enum) or (np is not None and isinstance(value, np.dtype))
            self.parts.add(f"{label}={type(value).__module__}.{type(value).__qualname__}" + (f" {value!r}" if frozen else ""))

    def stamp(self) -> str:
        import hashlib

        return hashlib.sha256("\n".join(sorted(self.parts)).encode()).hexdigest()


def dependency_stamp(py_func) -> str:
    """A hash of what the compiled code of ``py_func`` depends on, as loaded in this process: its
    code and that of the jitted functions it calls (recursively, through globals, module
    attributes and closures; simfit's by :func:`package_stamp`), and the constants, defaults and
    other global values they read (Numba compiles those in)."""
    return _Dependencies(getattr(py_func, "py_func", py_func)).stamp()


# ------------------------------------------------------------------ Numba's side


@functools.cache
def _numba_parts():
    """Numba's caching module and the two classes built on it, or None (with a warning) for a
    Numba without the internals this module uses."""
    import numba
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    needed = ("_CacheLocator", "FunctionCache", "IndexDataCacheFile", "NullCache")
    if impl is None or not isinstance(getattr(impl, "_locator_classes", None), list) or not all(
        hasattr(caching, n) for n in needed
    ):
        warnings.warn(
            f"simfit: Numba {numba.__version__} lacks the cache internals simfit uses (tested with {_TESTED}); "
            "kernels are cached by Numba's own rules, which do not notice a change in a function a kernel calls "
            "from another file. Clear __pycache__ after such a change, or use a tested Numba.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None

    class PackageLocator(caching._CacheLocator):
        """simfit's kernels: where and how Numba would cache them, with the stamp also covering
        the sources of the simfit modules their module imports."""

        def __init__(self, inner, py_file):
            self._inner = inner
            self._py_file = py_file
            self._lineno = getattr(inner, "_lineno", 0)

        def ensure_cache_path(self):
            self._inner.ensure_cache_path()

        def get_cache_path(self):
            return self._inner.get_cache_path()

        def get_disambiguator(self):
            return self._inner.get_disambiguator()

        def get_source_stamp(self):
            return (self._inner.get_source_stamp(), package_stamp(self._py_file))

        @classmethod
        def from_function(cls, py_func, py_file):
            if not in_package(py_file):
                return None
            for other in impl._locator_classes:
                if other is not cls:
                    inner = other.from_function(py_func, py_file)
                    if inner is not None:
                        return cls(inner, py_file)
            return None

    class DependencyCache(caching.FunctionCache):
        """Numba's cache of a user function, in files of its own named after its module, whose
        index is stamped with its dependencies as well as its own file."""

        def __init__(self, py_func, stamp):
            super().__init__(py_func)
            self.dependency_stamp = stamp
            self._cache_file = caching.IndexDataCacheFile(
                cache_path=self._cache_path,
                filename_base=f"{self._impl.filename_base}.simfit-{py_func.__module__}",
                source_stamp=(self._impl.locator.get_source_stamp(), stamp),
            )

    return caching, impl, PackageLocator, DependencyCache


def _install_package_locator() -> None:
    parts = _numba_parts()
    if parts is None:
        return
    _, impl, locator, _ = parts
    if locator not in impl._locator_classes:
        impl._locator_classes.insert(0, locator)


class _AfterNumbaCaching:  # a meta path finder (importlib.abc would cost `import simfit` 15 ms)
    """Installs the package locator as soon as Numba's caching module has run: before any simfit
    kernel is decorated (decorating one imports Numba), without importing Numba itself."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "numba.core.caching":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        exec_module = spec.loader.exec_module

        def exec_then_install(module):
            exec_module(module)
            _install_package_locator()

        spec.loader.exec_module = exec_then_install
        return spec


def stamp_package_kernels() -> None:
    """Stamp the disk cache of simfit's own kernels with the sources of the simfit modules their
    module imports (called by ``import simfit``, before any kernel is decorated)."""
    if "numba.core.caching" in sys.modules:
        _install_package_locator()
    elif not any(isinstance(f, _AfterNumbaCaching) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterNumbaCaching())


def key_on_dependencies(kernel) -> None:
    """Give a user kernel, and every jitted function it calls outside simfit, a disk cache stamped
    with its dependencies (:func:`dependency_stamp`) in files named after its module. Functions
    without ``cache=True``, already compiled in this process, already keyed or of simfit itself
    (stamped when decorated) are left as they are."""
    parts = _numba_parts()
    if parts is None:
        return
    caching, _, _, dependency_cache = parts

    def settled(dispatcher) -> bool:
        cache = getattr(dispatcher, "_cache", None)
        return (
            cache is None
            or isinstance(cache, (caching.NullCache, dependency_cache))
            or bool(dispatcher.overloads)
            or in_package(dispatcher.py_func.__code__.co_filename)
        )

    if isinstance(getattr(kernel, "_cache", None), dependency_cache) or kernel.overloads or in_package(
        kernel.py_func.__code__.co_filename
    ):
        return  # its callees were settled with it (a kernel without cache=True still has its callees keyed)
    for dispatcher in [kernel, *_Dependencies(kernel.py_func).dispatchers]:
        if settled(dispatcher):
            continue
        try:
            keyed = dependency_cache(dispatcher.py_func, dependency_stamp(dispatcher.py_func))
        except Exception:  # no cache location any more (its file gone, say): Numba's own rules
            continue
        dispatcher._cache = keyed

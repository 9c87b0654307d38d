"""Crash-safe, append-only storage of finished replications.

A study folder holds ``manifest.json`` (what the study is: its fingerprint and configuration) and
``replications.jsonl``, one JSON record per finished replication, each line carrying a CRC-32 of
its payload. A record is appended, flushed and fsynced the moment its replication finishes; a
process killed mid-write leaves at most one partial last line, which :meth:`ReplicationStore.open`
detects (no final newline), reports and truncates away; a damaged complete line (invalid JSON or a
wrong checksum) is skipped and counted. Resuming reads
the finished replication numbers and runs only the others.
"""

from __future__ import annotations

import fcntl
import json
import os
import zlib
from pathlib import Path

from simfit import jsonio
from simfit.errors import ScenarioError

__all__ = ["ReplicationStore", "MANIFEST", "RECORDS"]

MANIFEST = "manifest.json"
RECORDS = "replications.jsonl"


def _encode(record: dict) -> bytes:
    payload = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=True)
    crc = zlib.crc32(payload.encode())
    return (json.dumps({"crc": crc, "record": record}, sort_keys=True, separators=(",", ":"), allow_nan=True) + "\n").encode()


def _decode(line: bytes) -> dict | None:
    try:
        wrapper = json.loads(line)
        record = wrapper["record"]
        payload = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=True)
        if zlib.crc32(payload.encode()) != wrapper["crc"]:
            return None
        return record
    except (ValueError, KeyError, TypeError):
        return None


LOCK = ".lock"


def _write_atomic(path: Path, text: str) -> None:
    """Write a whole file or nothing: a temporary file of this process, fsynced, then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _lock_folder(folder: Path):
    """An exclusive lock on ``folder`` for as long as the returned file stays open."""
    fh = (folder / LOCK).open("a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise ScenarioError(
            f"{folder} is being written by another simfit run; wait for it to finish (then resume), or use another --out "
            "folder."
        ) from None
    return fh


class ReplicationStore:
    """The records of one study folder.

    Use :meth:`create` for a new study and :meth:`open` to resume one; :meth:`append` persists a
    record durably; :attr:`records` are the finished ones (keyed by replication number).
    """

    def __init__(self, folder: Path, manifest: dict, records: dict[int, dict], dropped: int = 0):
        self._lock = None
        self.folder = Path(folder)
        self.manifest = manifest
        self.records = records
        self.dropped = dropped

    @classmethod
    def create(cls, folder: str | Path, manifest: dict, force: bool = False) -> ReplicationStore:
        """Start a study in ``folder``, or resume it if it holds the same study.

        Parameters
        ----------
        folder : path
        manifest : dict
            With the run's ``fingerprint``.
        force : bool
            Write into an existing folder that holds other files (never into another run's).

        Raises
        ------
        ScenarioError
            If the folder holds a different study (another fingerprint), or files of its own and
            ``force`` is not set.
        """
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise ScenarioError(f"Output folder {folder} is a file; choose a folder for --out.")
        if not (folder / MANIFEST).exists() and (folder / RECORDS).exists() and (folder / RECORDS).stat().st_size:
            raise ScenarioError(
                f"{folder} holds replication records but no {MANIFEST}; it is not a study simfit can "
                "continue. Use a new --out folder."
            )
        if not force and folder.is_dir() and not (folder / MANIFEST).exists():
            others = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))  # not our lock
            if others:
                shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
                raise ScenarioError(
                    f"Output folder {folder} already holds files ({shown}) and is not a simfit run; simfit would "
                    "overwrite them. Choose a new --out folder, or pass --force (force=True) to write into it."
                )
        folder.mkdir(parents=True, exist_ok=True)
        lock = _lock_folder(folder)  # held by the returned store while the run writes
        try:
            if (folder / MANIFEST).exists():
                store = cls.open(folder)
                if store.manifest.get("fingerprint") != manifest["fingerprint"]:
                    raise ScenarioError(
                        f"Output folder {folder} holds a different study (its scenario or options "
                        "changed); resume it unchanged or write to a new --out folder."
                    )
                store._lock = lock
                return store
            _write_atomic(folder / MANIFEST, jsonio.dumps(manifest, indent=2, sort_keys=True))
            (folder / RECORDS).touch()
        except BaseException:
            lock.close()
            raise
        store = cls(folder, manifest, {})
        store._lock = lock
        return store

    def close(self) -> None:
        """Release the folder for other runs (also released when the process ends)."""
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.close()
            self._lock = None

    @classmethod
    def open(cls, folder: str | Path) -> ReplicationStore:
        """Load a study folder, dropping a partly written last record."""
        folder = Path(folder)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError:
            raise ScenarioError(f"{folder} is not a study folder (no {MANIFEST}).") from None
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"Cannot read {folder / MANIFEST}: {exc}.") from None
        path = folder / RECORDS
        records: dict[int, dict] = {}
        dropped = 0
        good_bytes = 0
        if path.exists():
            data = path.read_bytes()
            for line in data.splitlines(keepends=True):
                if not line.endswith(b"\n"):  # a torn tail: the writer was killed mid-record
                    dropped += 1
                    break
                good_bytes += len(line)
                record = _decode(line)
                if record is None:  # a damaged line: skipped and counted, later ones kept
                    dropped += 1
                    continue
                records[int(record["rep"])] = record
            if good_bytes < len(data):
                with path.open("r+b") as fh:
                    fh.truncate(good_bytes)
                    fh.flush()
                    os.fsync(fh.fileno())
        return cls(folder, manifest, records, dropped)

    def append(self, record: dict) -> None:
        """Persist one finished replication (flushed and fsynced before returning); an exclusive
        lock keeps two processes writing to one folder from interleaving lines."""
        with (self.folder / RECORDS).open("ab") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                fh.write(_encode(record))
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        self.records[int(record["rep"])] = record

    def update_manifest(self, **changes) -> None:
        """Change entries of the manifest (atomically replaced)."""
        self.manifest.update(changes)
        _write_atomic(self.folder / MANIFEST, jsonio.dumps(self.manifest, indent=2, sort_keys=True))

    def missing(self, reps: int) -> list[int]:
        """Replication numbers below ``reps`` without a record."""
        return [r for r in range(reps) if r not in self.records]

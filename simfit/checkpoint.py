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
MANIFEST_BACKUP = ".manifest.backup.json"
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
    """Write a whole text file or nothing (see :func:`_write_atomic_bytes`)."""
    _write_atomic_bytes(path, text.encode())


def _has_manifest(folder: Path) -> bool:
    return (folder / MANIFEST).exists() or (folder / MANIFEST_BACKUP).exists()


def _write_atomic_bytes(path: Path, data: bytes) -> None:
    """Write a whole file or nothing: a temporary file of this process, fsynced, then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _manifest_body_and_crc(manifest: dict) -> tuple[dict, int]:
    """The manifest without its checksum, and the checksum of that content."""
    body = {k: v for k, v in manifest.items() if k != "crc"}
    return body, zlib.crc32(jsonio.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def _manifest_text(manifest: dict) -> str:
    """The manifest with a checksum of its own content (so a flipped byte is detected)."""
    body, crc = _manifest_body_and_crc(manifest)
    return jsonio.dumps({**body, "crc": crc}, indent=2, sort_keys=True)


def _write_manifest(folder: Path, manifest: dict) -> None:
    """The manifest and its backup copy, each written whole."""
    text = _manifest_text(manifest)
    _write_atomic(folder / MANIFEST, text)
    _write_atomic(folder / MANIFEST_BACKUP, text)


def _parse_manifest(path: Path) -> dict | None:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(manifest, dict):
        return None
    if "crc" in manifest:
        body, crc = _manifest_body_and_crc(manifest)
        return body if crc == manifest["crc"] else None
    return manifest  # written before manifests carried a checksum


def _read_manifest(folder: Path) -> tuple[dict, bool]:
    """The manifest (without its checksum), and whether it was restored from the backup copy."""
    manifest = _parse_manifest(folder / MANIFEST)
    if manifest is not None:
        return manifest, False
    backup = _parse_manifest(folder / MANIFEST_BACKUP)
    if backup is None:
        raise ScenarioError(
            f"{folder / MANIFEST} is damaged and has no intact backup ({MANIFEST_BACKUP}); the folder's records cannot be "
            "matched to a study. Start the run again in a new --out folder."
        )
    _write_atomic(folder / MANIFEST, _manifest_text(backup))
    return backup, True


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
        self.damaged = 0
        self.manifest_restored = False

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
        if not _has_manifest(folder) and (folder / RECORDS).exists() and (folder / RECORDS).stat().st_size:
            raise ScenarioError(
                f"{folder} holds replication records but no {MANIFEST}; it is not a study simfit can "
                "continue. Use a new --out folder."
            )
        if not force and folder.is_dir() and not _has_manifest(folder):
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
            if _has_manifest(folder):
                store = cls.open(folder)
                if store.manifest.get("fingerprint") != manifest["fingerprint"]:
                    raise ScenarioError(
                        f"Output folder {folder} holds a different study (its scenario or options "
                        "changed); resume it unchanged or write to a new --out folder."
                    )
                store._lock = lock
                return store
            _write_manifest(folder, manifest)
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
        """Load a study folder: a partly written last record is dropped (``dropped``), damaged
        records are removed once and counted (``damaged``; their replications run again), and a
        damaged manifest is restored from its backup copy (``manifest_restored``)."""
        folder = Path(folder)
        if not _has_manifest(folder):
            raise ScenarioError(f"{folder} is not a study folder (no {MANIFEST}).")
        manifest, restored = _read_manifest(folder)
        path = folder / RECORDS
        records: dict[int, dict] = {}
        dropped = damaged = 0
        if path.exists():
            data = path.read_bytes()
            good: list[bytes] = []
            for line in data.splitlines(keepends=True):
                if not line.endswith(b"\n"):  # a torn tail: the writer was killed mid-record
                    dropped += 1
                    break
                record = _decode(line)
                if record is None:  # a damaged line: skipped, later ones kept
                    damaged += 1
                    continue
                good.append(line)
                records[int(record["rep"])] = record
            if dropped or damaged:  # keep only intact records, so that damage is reported once
                _write_atomic_bytes(path, b"".join(good))
        store = cls(folder, manifest, records, dropped)
        store.damaged = damaged
        store.manifest_restored = restored
        return store

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
        _write_manifest(self.folder, self.manifest)

    def missing(self, reps: int) -> list[int]:
        """Replication numbers below ``reps`` without a record."""
        return [r for r in range(reps) if r not in self.records]

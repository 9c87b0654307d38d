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


class ReplicationStore:
    """The records of one study folder.

    Use :meth:`create` for a new study and :meth:`open` to resume one; :meth:`append` persists a
    record durably; :attr:`records` are the finished ones (keyed by replication number).
    """

    def __init__(self, folder: Path, manifest: dict, records: dict[int, dict], dropped: int = 0):
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
        if not force and folder.is_dir() and not (folder / MANIFEST).exists():
            others = sorted(p.name for p in folder.iterdir())
            if others:
                shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
                raise ScenarioError(
                    f"Output folder {folder} already holds files ({shown}) and is not a simfit run; simfit would "
                    "overwrite them. Choose a new --out folder, or pass --force (force=True) to write into it."
                )
        if not (folder / MANIFEST).exists() and (folder / RECORDS).exists() and (folder / RECORDS).stat().st_size:
            raise ScenarioError(
                f"{folder} holds replication records but no {MANIFEST}; it is not a study simfit can "
                "continue. Use a new --out folder."
            )
        if (folder / MANIFEST).exists():
            store = cls.open(folder)
            if store.manifest.get("fingerprint") != manifest["fingerprint"]:
                raise ScenarioError(
                    f"Output folder {folder} holds a different study (its scenario or options "
                    "changed); resume it unchanged or write to a new --out folder."
                )
            return store
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (MANIFEST + ".tmp")
        tmp.write_text(jsonio.dumps(manifest, indent=2, sort_keys=True))
        os.replace(tmp, folder / MANIFEST)
        (folder / RECORDS).touch()
        return cls(folder, manifest, {})

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
        tmp = self.folder / (MANIFEST + ".tmp")
        tmp.write_text(jsonio.dumps(self.manifest, indent=2, sort_keys=True))
        os.replace(tmp, self.folder / MANIFEST)

    def missing(self, reps: int) -> list[int]:
        """Replication numbers below ``reps`` without a record."""
        return [r for r in range(reps) if r not in self.records]

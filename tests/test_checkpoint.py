"""Append-only replication records: durability, torn tails, study fingerprints."""

import json

import pytest

from simfit.checkpoint import RECORDS, ReplicationStore
from simfit.errors import ScenarioError


def test_append_and_reopen(tmp_path):
    store = ReplicationStore.create(tmp_path / "s", {"fingerprint": "abc"})
    for r in (0, 2, 1):
        store.append({"rep": r, "value": r * 1.5})
    again = ReplicationStore.open(tmp_path / "s")
    assert sorted(again.records) == [0, 1, 2] and again.records[2]["value"] == 3.0
    assert again.missing(5) == [3, 4]


def test_torn_last_record_is_dropped_and_truncated(tmp_path):
    store = ReplicationStore.create(tmp_path, {"fingerprint": "abc"})
    store.append({"rep": 0, "value": 1.0})
    store.append({"rep": 1, "value": 2.0})
    path = tmp_path / RECORDS
    good = path.read_bytes()
    path.write_bytes(good + b'{"crc": 1, "record": {"rep": 2, "val')  # killed mid-write
    again = ReplicationStore.open(tmp_path)
    assert sorted(again.records) == [0, 1] and again.dropped == 1
    assert path.read_bytes() == good
    again.append({"rep": 2, "value": 3.0})
    assert sorted(ReplicationStore.open(tmp_path).records) == [0, 1, 2]


def test_corrupted_record_fails_its_checksum(tmp_path):
    store = ReplicationStore.create(tmp_path, {"fingerprint": "abc"})
    store.append({"rep": 0, "value": 1.0})
    line = json.loads((tmp_path / RECORDS).read_text())
    line["record"]["value"] = 9.0
    (tmp_path / RECORDS).write_text(json.dumps(line) + "\n")
    assert ReplicationStore.open(tmp_path).records == {}


def test_other_study_in_the_folder_is_refused(tmp_path):
    ReplicationStore.create(tmp_path, {"fingerprint": "abc"})
    with pytest.raises(ScenarioError, match="holds a different study"):
        ReplicationStore.create(tmp_path, {"fingerprint": "xyz"})
    with pytest.raises(ScenarioError, match="not a study folder"):
        ReplicationStore.open(tmp_path / "nothing")


def test_damaged_middle_line_is_skipped_and_later_records_kept(tmp_path):
    store = ReplicationStore.create(tmp_path, {"fingerprint": "abc"})
    for r in range(4):
        store.append({"rep": r, "value": float(r)})
    lines = (tmp_path / RECORDS).read_text().splitlines(keepends=True)
    lines[1] = "garbage\n"
    (tmp_path / RECORDS).write_text("".join(lines))
    again = ReplicationStore.open(tmp_path)
    assert sorted(again.records) == [0, 2, 3] and again.damaged == 1 and again.dropped == 0
    once = ReplicationStore.open(tmp_path)  # the damage is removed, so reported once
    assert sorted(once.records) == [0, 2, 3] and once.damaged == 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_manifest_is_restored_from_its_backup(tmp_path, damage):
    store = ReplicationStore.create(tmp_path, {"fingerprint": "abc", "reps": 4})
    store.append({"rep": 0, "value": 1.0})
    store.close()
    path = tmp_path / "manifest.json"
    text = path.read_text()
    if damage == "flip":
        path.write_text(text.replace('"abc"', '"abd"'))  # still valid JSON, wrong content
    elif damage == "truncate":
        path.write_text(text[: len(text) // 2])
    else:
        path.unlink()
    again = ReplicationStore.open(tmp_path)
    assert again.manifest_restored and again.manifest["fingerprint"] == "abc" and list(again.records) == [0]
    resumed = ReplicationStore.create(tmp_path, {"fingerprint": "abc", "reps": 4})
    assert list(resumed.records) == [0]
    resumed.close()


def test_records_without_a_manifest_are_refused(tmp_path):
    (tmp_path / RECORDS).write_text('{"crc": 0, "record": {"rep": 0}}\n')
    with pytest.raises(ScenarioError, match="no manifest.json"):
        ReplicationStore.create(tmp_path, {"fingerprint": "abc"})


def test_a_folder_being_written_is_locked_against_a_second_run(tmp_path):
    first = ReplicationStore.create(tmp_path / "s", {"fingerprint": "abc"})
    with pytest.raises(ScenarioError, match="being written by another simfit run"):
        ReplicationStore.create(tmp_path / "s", {"fingerprint": "abc"})
    first.append({"rep": 0, "x": 1.0})
    first.close()
    again = ReplicationStore.create(tmp_path / "s", {"fingerprint": "abc"})
    assert list(again.records) == [0]
    again.close()
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.endswith(".tmp")]

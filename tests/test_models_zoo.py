"""Every shipped scenario runs a (tiny) recovery study from the command line."""

import json
from pathlib import Path

import pytest

from simfit.cli import main
from simfit.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_runs(path, tmp_path, capsys):
    if path.stem == "ddm":
        # A DDM fit with the global phase and the bootstrap takes over a minute: run the shipped
        # model and statistics on half its subjects and trials, with the local phase alone and
        # sandwich intervals.
        text = path.read_text().replace("[fit]\n", "[fit]\nglobal_points = 0\nbootstrap = 0\n")
        text = text.replace("units = 40\nobservations = 100\n", "units = 20\nobservations = 50\n")
        assert "global_points = 0" in text and "units = 20" in text
        path = tmp_path / "ddm.toml"
        path.write_text(text)
    # Fits of these take 5-15 s each: one replication shows the scenario runs.
    reps = "1" if path.stem in ("ddm", "pk", "gandk", "dynamic_panel", "growth") else "2"
    assert main(["run", str(path), "--reps", reps, "--out", str(tmp_path / "out"), "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model, _ = load_scenario(path).build()
    assert set(summary["params"]) == set(model.param_names)
    assert (tmp_path / "out" / "recovery.png").exists()

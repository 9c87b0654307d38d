"""The simfit command line."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from simfit.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_simulate_quickstart_json_and_csv(tmp_path, capsys):
    out = tmp_path / "panel.csv"
    assert main(["simulate", str(ROOT / "scenarios" / "quickstart.toml"), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == "random_intercept"
    assert set(summary["statistics"][0]) == {"mean:y.mean", "mean:y.var", "sd:y.mean", "sd:y.var"}
    frame = pd.read_csv(out)
    assert len(frame) == 50 * 20 and {"unit", "y", "unit.a"} <= set(frame.columns)


def test_simulate_is_reproducible(capsys):
    args = ["simulate", str(ROOT / "scenarios" / "lognormal.toml"), "--json", "--seed", "4"]
    main(args)
    first = json.loads(capsys.readouterr().out.splitlines()[-1])["statistics"]
    main(args)
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["statistics"] == first


def test_errors_are_one_line_with_nonzero_exit(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "random_intercept"\n[truth]\nmu = 1\n[design]\nunits = 3\nobservations = 2\nextra = 1\n')
    res = subprocess.run([sys.executable, "-m", "simfit", "simulate", str(bad)], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "unknown key(s) extra" in res.stderr
    assert "Traceback" not in res.stderr


def test_list_and_show(capsys):
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.splitlines()[-1])["scenarios"]
    assert any(p.endswith("quickstart.toml") for p in listed)
    assert main(["show", str(ROOT / "scenarios" / "quickstart.toml"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert info["params"] == ["mu", "tau", "sigma"]

"""Mutated scenario files and data files: a one-line simfit error or a correct run, never a traceback."""

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from simfit.cli import main

SCENARIO = """
[model]
name = "random_intercept"
[truth]
mu = 1.0
tau = 0.5
sigma = 1.0
[design]
units = 12
observations = 5
[data]
unit = "id"
values = ["y"]
[fit]
global_points = 0
bootstrap = 0
n_cov_sims = 60
"""

LINES = [line for line in SCENARIO.strip().splitlines()]
NOISE = ['x = 1', 'units = -3', 'units = "many"', 'mu = "a"', "[fit]", "n_sims = 0", 'name = "nope"', "tau = -1",
         "[study]", "reps = 0", 'weighting = "best"', "[grid]", "sigma = []", "observations = 1e400", "= 3", "[", "mu = inf"]


def _run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refusing its own arguments
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hs.lists(hs.tuples(hs.sampled_from(["drop", "insert", "duplicate"]), hs.integers(0, len(LINES) - 1), hs.sampled_from(NOISE)),
                max_size=3))
def test_mutated_scenarios_load_or_fail_in_one_line(tmp_path_factory, capsys, edits):
    lines = list(LINES)
    for kind, where, noise in edits:
        where = min(where, max(len(lines) - 1, 0))
        if kind == "drop" and lines:
            lines.pop(where)
        elif kind == "insert":
            lines.insert(where, noise)
        elif lines:
            lines.insert(where, lines[where])
    path = tmp_path_factory.mktemp("s") / "s.toml"
    path.write_text("\n".join(lines) + "\n")
    code, err = _run(capsys, ["show", str(path), "--json"])
    assert code in (0, 2), err
    assert "Traceback" not in err and (code == 0 or err.count("\n") == 1), err


def _good_frame(rng):
    ids = np.repeat(np.arange(12), 5)
    return pd.DataFrame({"id": ids, "y": 1.0 + 0.5 * rng.normal(size=12)[ids] + rng.normal(size=ids.size)})


MUTATIONS = ["drop_unit_column", "drop_value_column", "extra_column", "text_cell", "nan_cell", "inf_cell", "empty_file",
             "shuffle_rows", "huge_values", "single_row_units", "header_only", "duplicate_header"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hs.lists(hs.sampled_from(MUTATIONS), min_size=1, max_size=2, unique=True), hs.integers(0, 10**6))
def test_mutated_data_files_fit_or_fail_in_one_line(tmp_path_factory, capsys, mutations, seed):
    rng = np.random.default_rng(seed)
    folder = tmp_path_factory.mktemp("d")
    (folder / "s.toml").write_text(SCENARIO)
    frame = _good_frame(rng)
    text = None
    for m in mutations:
        k = int(rng.integers(len(frame))) if len(frame) else 0
        if m == "drop_unit_column":
            frame = frame.drop(columns=["id"], errors="ignore")
        elif m == "drop_value_column":
            frame = frame.drop(columns=["y"], errors="ignore")
        elif m == "extra_column":
            frame = frame.assign(extra=rng.normal(size=len(frame)))
        elif m == "text_cell" and "y" in frame and len(frame):
            frame = frame.astype({"y": object})
            frame.loc[k, "y"] = "n/a"
        elif m == "nan_cell" and "y" in frame and len(frame):
            frame.loc[k, "y"] = np.nan
        elif m == "inf_cell" and "y" in frame and len(frame):
            frame.loc[k, "y"] = np.inf
        elif m == "shuffle_rows":
            frame = frame.sample(frac=1.0, random_state=int(rng.integers(1000))).reset_index(drop=True)
        elif m == "huge_values" and "y" in frame:
            frame = frame.assign(y=pd.to_numeric(frame["y"], errors="coerce") * 1e6)
        elif m == "single_row_units" and "id" in frame:
            frame = frame.drop_duplicates("id")
        elif m == "empty_file":
            text = ""
        elif m == "header_only":
            frame = frame.iloc[:0]
        elif m == "duplicate_header":
            text = frame.to_csv(index=False).replace("id,y", "id,y,y", 1).replace("\n", ",0\n").replace("id,y,y,0", "id,y,y")
    data = folder / "d.csv"
    data.write_text(frame.to_csv(index=False) if text is None else text)
    code, err = _run(capsys, ["fit", str(folder / "s.toml"), "--data", str(data), "--json"])
    assert code in (0, 2), err
    assert "Traceback" not in err and (code == 0 or err.count("\n") == 1), err

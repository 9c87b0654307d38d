"""Scenario files: shipped scenarios load; invalid files give errors naming file and key."""

import sys
from pathlib import Path

import pytest

from simfit.errors import ScenarioError
from simfit.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["quickstart", "lognormal", "three_level", "few_units"])
def test_shipped_scenarios_load(name):
    sc = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    model, stats = sc.build()
    assert set(sc.truth) | set(sc.prior) | set(sc.grid) == set(model.param_names)
    assert sc.design_panel().n_levels == model.n_levels


def write(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


GOOD = """
[model]
name = "random_intercept"
[truth]
mu = 1.0
tau = 0.5
sigma = 1
[design]
units = 10
observations = 5
"""


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD + "[fitting]\nx = 1\n", r"unknown section\(s\) \[fitting\]"),
        (GOOD.replace("units = 10", "units = 10\nunit = 3"), r"\[design\]: unknown key\(s\) unit"),
        (GOOD.replace("units = 10", 'units = "ten"'), r"\[design\] units: expected an integer"),
        (GOOD.replace("tau = 0.5", 'tau = "x"'), r"\[truth\] tau: expected a number"),
        (GOOD.replace("tau = 0.5", "tau = -0.5"), "outside its bounds"),
        (GOOD.replace("sigma = 1", ""), "No truth, grid or prior for parameter"),
        (GOOD.replace('name = "random_intercept"', 'name = "nope"'), "unknown model 'nope'"),
        (GOOD.replace('name = "random_intercept"', 'name = "nopkg.mod:f"'), "cannot import module"),
        (GOOD.replace("observations = 5", ""), "observations must be a positive integer"),
        (GOOD.replace("observations = 5", "observations = 5\ngroups = 2"), "set 'groups' exactly"),
        (GOOD + "[fit]\nn_sims = 1\n", r"\[fit\] n_sims must be an integer of at least 2"),
        (GOOD + "[fit]\nweighting = 3\n", r"\[fit\] weighting: expected a string"),
        (GOOD + '[prior]\ntau = { dist = "cauchy" }\n', "Unknown prior family"),
        (GOOD + "[grid]\nsigma = []\n", r"\[grid\] sigma: expected a non-empty list"),
        (GOOD + '[study]\nalpha = 2.0\n', "alpha must lie in"),
        (GOOD + '[sample]\nmethod = "nuts"\n', r"\[sample\] method: expected one of 'bsl', 'abc-smc', 'surrogate', got 'nuts'"),
        (GOOD + "[sample]\nn_particles = 100\n", r"\[sample\]: unknown key\(s\) n_particles for method 'bsl'"),
        (GOOD + '[sample]\nmethod = "abc-smc"\nn_particles = 5\n', "n_particles must be at least 20"),
        (GOOD + "[sample]\nchains = 0\n", r"\[sample\] chains must be a positive integer"),
        (GOOD + "[sample]\nshrinkage = 2.0\n", "shrinkage must lie in"),
        ("[model\n", "not valid TOML"),
        (GOOD + "[grid]\ntau = [0.2, 0.5]\n", r"tau appear\(s\) in both \[truth\] and \[grid\]"),
        (GOOD + '[statistics]\nkind = "hand"\n', r"\[statistics\] kind: model 'random_intercept' offers one statistic set"),
        (GOOD + "[statistics]\npilot = 5\n", r"\[statistics\] pilot must be at least 10"),
        (GOOD + "[statistics]\nproject = true\n", r"\[statistics\]: unknown key\(s\) project"),
    ],
)
def test_invalid_scenarios(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(path)
    assert str(path) in str(err.value) or "TOML" in str(err.value)


def test_sample_table_keeps_method_options(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD + '[sample]\nmethod = "abc-smc"\nn_particles = 300\nseed = 4\n'))
    assert (sc.sample.method, sc.sample.seed, sc.sample.options) == ("abc-smc", 4, {"n_particles": 300})


def test_a_complete_truth_is_fixed_and_the_prior_only_samples(tmp_path):
    text = GOOD + '[prior]\nmu = { dist = "normal", mean = 0, sd = 5 }\ntau = { dist = "halfnormal", scale = 1 }\n'
    sc = load_scenario(write(tmp_path, text))
    assert sc.truth_spec().prior is None and set(sc.prior) == {"mu", "tau"}
    partial = load_scenario(write(tmp_path, text.replace("tau = 0.5\n", "", 1)))
    assert set(partial.truth_spec().prior) == {"tau"}


def test_missing_file():
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario("/nonexistent/x.toml")


USER_MODEL = """
from simfit.models import random_intercept

CALLS = []


def build():
    CALLS.append(1)
    return random_intercept.model(), random_intercept.statistics()


def model_only():
    return random_intercept.model()


imported = random_intercept.model
"""


def test_user_models_from_a_file_or_a_module_next_to_the_scenario(tmp_path):
    (tmp_path / "my_model.py").write_text(USER_MODEL)
    scenario = tmp_path / "s.toml"
    for name in ("my_model.py:build", "my_model:build"):
        scenario.write_text(GOOD.replace('name = "random_intercept"', f'name = "{name}"'))
        model, stats = load_scenario(scenario).build()
        assert model.name == "random_intercept" and stats is not None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("os:abort", "standard-library module"),
        ("code:interact", "standard-library module"),
        ("my_model.py:imported", "not a function defined in"),
        ("my_model.py:model_only", r"must return a \(Model, Statistics\) pair"),
        ("my_model.py:nothing", "has no function 'nothing'"),
        ("other.py:build", "model file .* not found"),
    ],
)
def test_scenarios_call_only_functions_of_the_users_own_module(tmp_path, name, message):
    (tmp_path / "my_model.py").write_text(USER_MODEL)
    scenario = write(tmp_path, GOOD.replace('name = "random_intercept"', f'name = "{name}"'))
    with pytest.raises(ScenarioError, match=message):
        load_scenario(scenario)


def test_show_does_not_run_the_scenarios_code(tmp_path, capsys):
    from simfit.cli import main

    (tmp_path / "side_effect.py").write_text("raise SystemExit('the model module ran')\n")
    scenario = write(tmp_path, GOOD.replace('name = "random_intercept"', 'name = "side_effect.py:build"'))
    assert main(["show", str(scenario), "--json"]) == 0
    assert "side_effect.py:build" in capsys.readouterr().out


def test_design_from_a_data_file(tmp_path):
    (tmp_path / "d.csv").write_text("id,y\n1,0.5\n1,0.7\n2,1.0\n")
    path = write(tmp_path, GOOD.replace("units = 10\nobservations = 5", 'data = "d.csv"') + '[data]\nunit = "id"\n')
    design = load_scenario(path).design_panel()
    assert design.n_units == 2 and design.n_obs == 3 and not design.has_values


def test_fit_table_takes_optimizer_options_steps_and_bootstrap(tmp_path):
    text = GOOD + '''
[fit]
optimizer = "nelder-mead"
optimizer_options = { maxfev = 300, xatol = 1e-4 }
diff_step = { tau = 0.01 }
bootstrap = "auto"
bootstrap_steps = 3
check_convergence = true
'''
    sc = load_scenario(write(tmp_path, text))
    assert sc.fit.optimizer.maxfev == 300 and sc.fit.optimizer.xatol == 1e-4
    assert sc.fit.diff_step == {"tau": 0.01} and sc.fit.bootstrap == "auto" and sc.fit.bootstrap_steps == 3


@pytest.mark.parametrize(
    "line, message",
    [
        ('optimizer_options = { maxiter = 3 }', "Unknown option"),
        ('optimizer_options = 3', "expected a table"),
        ('bootstrap = "sometimes"', "number of replicates or \\\"auto\\\""),
        ('check_convergence = 1', "expected true or false"),
        ('bootstrap_method = "jackknife"', "bootstrap_method must be one of"),
    ],
)
def test_bad_fit_options_name_the_key(tmp_path, line, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario(write(tmp_path, GOOD + "\n[fit]\n" + line + "\n"))


def test_statistics_table_picks_a_set_and_projects_it(tmp_path):
    from simfit.statistics import Projected

    text = open(ROOT / "scenarios" / "pk.toml").read().replace('data/pk_example.csv', str(ROOT / "scenarios" / "data" / "pk_example.csv"))
    hand = load_scenario(write(tmp_path, text.replace("[truth]", '[statistics]\nkind = "hand"\n\n[truth]')))
    _, stats = hand.build()
    assert any("b_logt" in u.labels[2] for u in stats.unit)
    projected = load_scenario(write(tmp_path, text.replace("[truth]", "[statistics]\nprojected = true\npilot = 200\n\n[truth]")))
    _, stats = projected.build()
    assert isinstance(stats, Projected) and stats.pilot == 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unit,y,y\n1,1,2\n1,2,3\n", "'y' appear more than once in the header"),
        ("sim,unit,y\n0,1,1\n0,1,2\n1,1,3\n1,1,4\n", "holds 2 simulated panels"),
    ],
)
def test_data_files_that_would_be_misread_are_refused(tmp_path, text, message):
    from simfit.scenario import DataSpec, read_data

    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(ScenarioError, match=message):
        read_data(tmp_path / "d.csv", DataSpec(unit="unit", values=["y"]))


def test_unit_ids_are_read_as_written(tmp_path):
    from simfit.scenario import DataSpec, read_data

    (tmp_path / "d.csv").write_text("unit,y\n1,1\n1.0,2\na,3\na,4\n")
    panel = read_data(tmp_path / "d.csv", DataSpec(unit="unit", values=["y"]))
    assert panel.n_units == 2 and panel.obs_per_unit.tolist() == [2, 2]
    (tmp_path / "e.csv").write_text("sim,unit,y\n0,1,1\n0,1,2\n")  # one simulated panel is data
    assert read_data(tmp_path / "e.csv", DataSpec(unit="unit", values=["y"])).n_units == 1


def test_data_columns_map_file_names_to_the_models(tmp_path):
    from simfit.scenario import DataSpec, read_data

    (tmp_path / "d.csv").write_text("Subject,Time,Dose,Conc\nA,1,100,2.0\nA,2,100,1.5\nB,1,50,1.0\nB,2,50,0.7\n")
    spec = DataSpec(unit="Subject", values={"concentration": "Conc"}, covariates={"time": "Time", "dose": "Dose"})
    panel = read_data(tmp_path / "d.csv", spec)
    assert panel.value_names == ("concentration",) and panel.covariate_names == ("time", "dose")
    assert panel.covariates[:, 1].tolist() == [100.0, 100.0, 50.0, 50.0]
    scenario = write(tmp_path, '[model]\nname = "pk"\n[data]\nunit = "Subject"\nvalues = { concentration = "Conc" }\n'
                               'covariates = { time = "Time", dose = "Dose" }\n')
    assert load_scenario(scenario).data.covariates == {"time": "Time", "dose": "Dose"}
    with pytest.raises(ScenarioError, match="column name in quotes"):
        load_scenario(write(tmp_path, '[model]\nname = "pk"\n[data]\ncovariates = { time = 3 }\n'))
    with pytest.raises(ScenarioError, match="'Tim' not found"):
        read_data(tmp_path / "d.csv", DataSpec(unit="Subject", values=["Conc"], covariates={"time": "Tim"}))


DECAY = """
from numba import njit

import simfit
from simfit.models import random_intercept
from simfit.random import fill_normal


@njit(cache=True)
def noise(psi, theta, x, args, rng, y):
    fill_normal(rng, y[:, 0], theta[0], psi[2])


def model():
    ri = random_intercept.model()
    return simfit.Model(ri.params, ri.levels, simfit.Observations(noise, values=("y",))), random_intercept.statistics()
"""

FIT_FROM_PYTHON = """
import json

import pandas as pd

import decay
import simfit
from simfit.kernels import SIMULATE_SIGNATURE, compile_kernel

model, stats = decay.model()
panel = simfit.Panel.from_frame(pd.read_csv("data.csv"), unit="unit", values=["y"])
result = simfit.fit(model, panel, stats, global_points=0, bootstrap=0)
kernel, _ = compile_kernel(decay.noise, SIMULATE_SIGNATURE, "observation kernel")  # the one the fit used
print(json.dumps({"mu": float(result.params["mu"]), "cache_hits": sum(kernel.stats.cache_hits.values())}))
"""


def _run(args, cwd):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("order", ["command line first", "python first"])
def test_one_model_file_runs_from_the_command_line_and_from_python_in_either_order(tmp_path, order):
    import numpy as np

    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "decay.py").write_text(DECAY)
    (folder / "fit_it.py").write_text(FIT_FROM_PYTHON)
    rng = np.random.default_rng(7)
    unit = np.repeat(np.arange(20), 5)
    y = 1.0 + 0.5 * rng.standard_normal(20)[unit] + rng.standard_normal(unit.size)
    (folder / "data.csv").write_text("unit,y\n" + "".join(f"{u},{v!r}\n" for u, v in zip(unit.tolist(), y.tolist())))
    (folder / "s.toml").write_text('[model]\nname = "decay.py:model"\n[fit]\nglobal_points = 0\nbootstrap = 0\n')
    # The command line from another folder (decay.py not importable by name there), Python from its own.
    cli = ["-m", "simfit", "fit", str(folder / "s.toml"), "--data", str(folder / "data.csv"), "--json"]
    runs = [(cli + ["--out", str(folder / "fit1")], tmp_path), (["fit_it.py"], folder)]
    if order == "python first":
        runs.reverse()
    first, second = (_run(args, cwd) for args, cwd in runs)
    python = second if order == "command line first" else first
    cli_summary = first if order == "command line first" else second
    assert python["mu"] == pytest.approx(cli_summary["params"]["mu"], rel=1e-9)
    if order == "command line first":
        assert python["cache_hits"] == 1  # the kernel the command line compiled, read back under the same name
    cached = [p.name for p in (folder / "__pycache__").glob("*.nbi")]  # one cache, under the name `import` gives
    assert len(cached) == 1 and cached[0].startswith("decay.noise") and cached[0].endswith(".simfit-decay.nbi")


def test_a_model_file_named_like_another_module_is_loaded_under_a_name_of_its_own(tmp_path):
    import statistics

    for stem in ("statistics", "pandas", "my-model"):  # standard library, installed, not a module name
        (tmp_path / f"{stem}.py").write_text(USER_MODEL)
        scenario = write(tmp_path, GOOD.replace('name = "random_intercept"', f'name = "{stem}.py:build"'))
        model, _ = load_scenario(scenario).build()
        assert model.name == "random_intercept"
    assert sys.modules["statistics"] is statistics and "my-model" not in sys.modules
    assert sys.modules["pandas"].__file__ != str(tmp_path / "pandas.py")


def test_a_model_file_the_user_imported_is_used_as_it_is(tmp_path, monkeypatch):
    import importlib

    (tmp_path / "already_imported.py").write_text(USER_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module("already_imported")
        scenario = write(tmp_path, GOOD.replace('name = "random_intercept"', 'name = "already_imported.py:build"'))
        load_scenario(scenario).build()
        assert module.CALLS  # the user's module ran the function: not a second copy of it
    finally:
        sys.modules.pop("already_imported", None)

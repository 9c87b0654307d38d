"""Scenario files: shipped scenarios load; invalid files give errors naming file and key."""

import sys
from pathlib import Path

import numpy as np
import pytest

import simfit
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
        (GOOD + '[sample]\nmethod = "nuts"\n', r"\[sample\] method: expected one of 'auto', 'bsl', 'abc-smc', 'surrogate', got 'nuts'"),
        (GOOD + '[sample]\nmethod = ["bsl"]\n', r"\[sample\] method: expected a string, got list"),
        (GOOD + '[sample]\nmethod = "abc-smc"\nadjust = 1\n', r"\[sample\] adjust: expected true or false"),
        (GOOD + '[prior]\ntau = { dist = ["halfnormal"], scale = 1 }\n', r"\[prior\] tau: Unknown prior family"),
        (GOOD + "[sample]\nn_particles = 100\n", r"\[sample\]: unknown key\(s\) n_particles for method 'auto'"),
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


COVARIATE_MODEL = """
import math
from numba import njit
import simfit
from simfit import statistics as st
from simfit.random import normal

params = [simfit.Param("mu"), simfit.Param("tau", bounds=(0, math.inf)), simfit.Param("beta"),
          simfit.Param("sigma", bounds=(0, math.inf))]
unit = simfit.population_level("unit", [simfit.Normal("a", mean="mu", sd="tau")], params)


@njit(cache=True, error_model="numpy")
def observe(psi, theta, x, args, rng, y):
    for k in range(y.shape[0]):
        y[k, 0] = theta[0] + psi[2] * x[k, 0] + psi[3] * normal(rng)


def build():
    model = simfit.Model(params, [unit], simfit.Observations(observe, values=("y",), covariates=("x0",)))
    return model, st.Statistics(unit=[st.sd(), st.ols(["x0"])], across=["mean", "sd"])
"""

COVARIATE_SCENARIO = """
[model]
name = "covariate_model.py:build"
[truth]
mu = 1.0
tau = 0.5
beta = 0.3
sigma = 1.0
[design]
units = 4
observations = 3
"""


def test_a_balanced_design_carries_covariates_the_same_for_every_unit(tmp_path):
    (tmp_path / "covariate_model.py").write_text(COVARIATE_MODEL)
    text = COVARIATE_SCENARIO + "covariates = { x0 = [0.25, 0.5, 1], dose = [1, 1, 2] }\n"
    design = load_scenario(write(tmp_path, text)).design_panel()
    assert design.n_units == 4 and design.covariate_names == ("x0", "dose")
    assert design.covariates[:, 0].tolist() == [0.25, 0.5, 1.0] * 4 and design.covariates[:, 1].tolist() == [1, 1, 2] * 4
    scenario = load_scenario(write(tmp_path, text))
    model, stats = scenario.build()
    panel = simfit.Simulator(model, design, stats).simulate(scenario.truth, seed=1).panel(0)  # the model reads x0
    assert panel.covariate_names == ("x0", "dose")
    groups = load_scenario(write(tmp_path, GOOD.replace('"random_intercept"', '"three_level"')
                                 .replace("tau = 0.5", "tau_unit = 0.5\ntau_group = 0.3")
                                 + "groups = 2\ncovariates = { t = [1, 2, 3, 4, 5] }\n")).design_panel()
    assert groups.n_obs == 10 * 2 * 5 and groups.covariates[:, 0].tolist() == [1, 2, 3, 4, 5] * 20


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", r"reads observation covariate\(s\) 'x0', which a balanced design has only if given: \[design\] covariates = "
             r"\{ x0 = \[...\] \} with 3 value\(s\), the same for every unit; or take the design from a file: "
             r"\[design\] data = \"design.csv\""),
        ("covariates = { x0 = [1, 2] }\n", r"covariates.x0 has 2 value\(s\) but observations = 3"),
        ("covariates = { dose = [1, 2, 3], x0 = [1, 2, 3] }\n", "list x0 first and in this order"),
        ('covariates = { x0 = [1, "a", 3] }\n', r"\[design\] covariates.x0: expected a number"),
    ],
)
def test_balanced_design_covariates_errors_name_the_fix(tmp_path, extra, message):
    (tmp_path / "covariate_model.py").write_text(COVARIATE_MODEL)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(write(tmp_path, COVARIATE_SCENARIO + extra))


def test_a_model_that_makes_its_own_design_takes_no_design_covariates(tmp_path):
    text = open(ROOT / "scenarios" / "pk.toml").read().replace('data = "data/pk_example.csv"', "units = 5\nobservations = 3\ncovariates = { time = [1, 2, 3] }")
    with pytest.raises(ScenarioError, match="sets its own design's covariates"):
        load_scenario(write(tmp_path, text))


@pytest.mark.parametrize("text", ["id,x\n1,0.5\n1,0.7\n2,1.0\n", "id,x,y\n1,0.5,\n1,0.7,\n2,1.0,\n",
                                  "id,x,y\n1,0.5,nan\n1,0.7,NA\n2,1.0,3\n"])
def test_a_design_file_needs_no_values_column(tmp_path, text):
    (tmp_path / "d.csv").write_text(text)
    spec = GOOD.replace("units = 10\nobservations = 5", 'data = "d.csv"') + '[data]\nunit = "id"\ncovariates = ["x"]\n'
    for values in ['["y"]'] + (['{ y = "Y" }'] if "y" not in text else []):  # mapped: the file's Y, absent
        design = load_scenario(write(tmp_path, spec + f"values = {values}\n")).design_panel()
        assert design.n_units == 2 and not design.has_values and design.covariates[:, 0].tolist() == [0.5, 0.7, 1.0]
    from simfit.scenario import DataSpec, read_data

    if "y" in text:  # fitting data still needs every value
        with pytest.raises(ScenarioError, match="missing or infinite"):
            read_data(tmp_path / "d.csv", DataSpec(unit="id", values=["y"], covariates=["x"]))


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


# ---------------------------------------------------------------------- wrong types, every key

from dataclasses import fields  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402

from simfit.bayes.sampling import SAMPLER_OPTIONS, option_fields  # noqa: E402

# What each key of the schema takes: "str", "int", "float" (an integer is a number too), "bool",
# "names" (a list of strings or a table of strings), "table", "steps" (a number or a table of
# numbers), "count_or_auto" (an integer or "auto"), "prior" (a table with a string dist and
# numbers), "numbers" (a non-empty list of numbers), "number_lists" (a table of such lists).
SCHEMA = {
    "model": {"name": "str", "options": "table"},
    "statistics": {"kind": "str", "projected": "bool", "pilot": "int", "seed": "int", "options": "table"},
    "fixed": {"mu": "float"},
    "truth": {"mu": "float"},
    "start": {"mu": "float"},
    "prior": {"mu": "prior"},
    "grid": {"sigma": "numbers"},
    "design": {"units": "int", "observations": "int", "groups": "int", "data": "str", "covariates": "number_lists"},
    "data": {"unit": "str", "values": "names", "covariates": "names", "unit_covariates": "names", "group": "str"},
    "fit": {
        "n_sims": "int", "seed": "int", "weighting": "str", "optimizer": "str", "optimizer_options": "table",
        "n_cov_sims": "int", "jacobian_step": "steps", "diff_step": "steps", "search_width": "float",
        "global_points": "int", "n_starts": "int", "bootstrap": "count_or_auto", "bootstrap_method": "str",
        "check_convergence": "bool", "bootstrap_steps": "int", "n_jobs": "int", "backend": "str",
    },
    "study": {"reps": "int", "seed": "int", "alpha": "float", "n_jobs": "int", "backend": "str"},
    "simulate": {"seed": "int", "n_sims": "int"},
    "sample": {"method": "str", "chains": "int", "draws": "int", "warmup": "int", "seed": "int", "n_jobs": "int"},
}
# The options of each sampling method, under [sample] with that method.
SAMPLE_OPTIONS = {
    "bsl": {"n_sims": "count_or_auto", "shrinkage": "float", "unbiased": "bool", "target_acceptance": "float",
            "target_loglik_sd": "float", "independence": "float", "block": "int", "normalise": "bool",
            "normalise_panels": "int"},
    "abc-smc": {"n_particles": "int", "quantile": "float", "min_acceptance": "float", "min_tolerance": "float",
                "max_generations": "int", "max_simulations": "int", "batch": "int", "adaptive_scale": "bool",
                "adjust": "bool", "adjust_min_gain": "float", "adjust_full_gain": "float"},
    "surrogate": {"n_design": "int", "rounds": "int", "inflate": "float", "target_acceptance": "float",
                  "covariance": "str", "n_noise": "int", "n_check": "int", "scale": "str"},
}
SAMPLE_OPTIONS["auto"] = {**SAMPLE_OPTIONS["surrogate"], **SAMPLE_OPTIONS["bsl"]}  # the surrogate's, and BSL's (its fallback)


def test_the_schema_of_the_wrong_type_test_covers_every_key():
    from simfit import scenario as sc

    dataclass_of = {"model": sc.ModelSpec, "statistics": sc.StatisticsSpec, "design": sc.DesignSpec,
                    "data": sc.DataSpec, "study": sc.StudySpec, "simulate": sc.SimulateSpec}
    assert set(SCHEMA) == set(sc._SECTIONS)
    for name, cls in dataclass_of.items():
        assert set(SCHEMA[name]) == {f.name for f in fields(cls)}, name
    assert set(SCHEMA["fit"]) == set(sc._FIT_TYPES) and set(SCHEMA["sample"]) == set(sc._SAMPLE_KEYS)
    for method in SAMPLER_OPTIONS:
        assert set(SAMPLE_OPTIONS[method]) == set(option_fields(method)), method


_scalars = hs.one_of(
    hs.booleans(),
    hs.integers(-10**6, 10**6),
    hs.floats(allow_nan=False, allow_infinity=False, width=32),
    hs.text(alphabet="abcxyz_ ", max_size=6),
)
_toml_values = hs.recursive(
    _scalars,
    lambda inner: hs.one_of(hs.lists(inner, max_size=3), hs.dictionaries(hs.sampled_from(["a", "dist", "mean", "sd"]), inner, max_size=2)),
    max_leaves=5,
)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _right_type(kind, v):
    if kind == "str":
        return isinstance(v, str)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "float":
        return _is_number(v)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "names":
        return (isinstance(v, list) and all(isinstance(x, str) for x in v)) or (
            isinstance(v, dict) and all(isinstance(x, str) for x in v.values()))
    if kind == "table":
        return isinstance(v, dict)
    if kind == "steps":
        return _is_number(v) or (isinstance(v, dict) and all(_is_number(x) for x in v.values()))
    if kind == "count_or_auto":
        return v == "auto" or (isinstance(v, int) and not isinstance(v, bool))
    if kind == "prior":
        return isinstance(v, dict) and isinstance(v.get("dist"), str) and all(
            _is_number(x) for k, x in v.items() if k != "dist")
    if kind == "numbers":
        return isinstance(v, list) and bool(v) and all(_is_number(x) for x in v)
    if kind == "number_lists":
        return isinstance(v, dict) and all(_right_type("numbers", x) for x in v.values())
    raise AssertionError(kind)


def _toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, list):
        return "[" + ", ".join(map(_toml, v)) + "]"
    return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"


_keys = [(section, key, kind, {}) for section, keys in SCHEMA.items() for key, kind in keys.items()] + [
    ("sample", key, kind, {"method": method}) for method, keys in SAMPLE_OPTIONS.items() for key, kind in keys.items()
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(hs.sampled_from(_keys).flatmap(
    lambda k: hs.tuples(hs.just(k), _toml_values.filter(lambda v, kind=k[2]: not _right_type(kind, v)))))
def test_a_value_of_the_wrong_type_is_a_one_line_error_naming_the_key(tmp_path, case):
    (section, key, kind, extra), value = case
    tables = {"model": {"name": '"random_intercept"'}, "truth": {"mu": "1.0", "tau": "0.5", "sigma": "1.0"},
              "design": {"units": "10", "observations": "5"}}
    tables.setdefault(section, {}).update({k: _toml(v) for k, v in extra.items()})
    tables[section][key] = _toml(value)
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in table.items()) for name, table in tables.items())
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and key in message, message


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_semicolon_tab_and_bar_separated_files_are_read(tmp_path, delimiter):
    from simfit.scenario import DataSpec, read_data

    rows = [["Subject", "Conc", "Time"], ["A", "2.0", "1"], ["A", "1.5", "2"], ["B", "1.0", "1"]]
    (tmp_path / "d.csv").write_text("".join(delimiter.join(r) + "\n" for r in rows))
    panel = read_data(tmp_path / "d.csv", DataSpec(unit="Subject", values={"y": "Conc"}, covariates=["Time"]))
    assert panel.n_units == 2 and panel.values[:, 0].tolist() == [2.0, 1.5, 1.0] and panel.covariates[:, 0].tolist() == [1, 2, 1]
    # Decimal commas: the error says how the file was read.
    (tmp_path / "e.csv").write_text("".join(delimiter.join(r).replace(".", ",") + "\n" for r in rows))
    name = {";": "semicolon", "\t": "tab", "|": "vertical bar"}[delimiter]
    with pytest.raises(ScenarioError, match=rf"read as {name}-separated, with decimal points\): Column 'Conc' \(the model's 'y'\) is not numeric \(e.g. '2,0'"):
        read_data(tmp_path / "e.csv", DataSpec(unit="Subject", values={"y": "Conc"}, covariates=["Time"]))


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


# ---------------------------------------------------------------------- options of built-in models, [fixed]

PK_VARIANT = """
[model]
name = "pk"
options = { random = ["ka", "cl"], error = "additive", elimination = "ke" }
[statistics]
options = { start = [1.0, 0.04, 0.5], prior_sd = 2.0 }
[truth]
log_ka = 0.45
ka_sd = 0.5
log_cl = -3.2
cl_sd = 0.2
log_ke = -2.45
sigma_add = 0.5
"""


def test_model_and_statistics_options_are_keyword_arguments_of_the_built_in_functions(tmp_path):
    from simfit.models import pk

    sc = load_scenario(write(tmp_path, PK_VARIANT))
    model, stats = sc.build()
    assert model.param_names == pk.model(random=["ka", "cl"], error="additive", elimination="ke").param_names
    assert model.param_names == ("log_ka", "ka_sd", "log_cl", "cl_sd", "log_ke", "sigma_add")
    panel = simfit.simulate(model, pk.design(6, dose=4.5), sc.truth, seed=1).panel(0)
    direct = pk.statistics(start=(1.0, 0.04, 0.5), prior_sd=2.0)
    np.testing.assert_array_equal(simfit.Simulator(model, panel.design(), stats).observed_unit_statistics(panel),
                                  simfit.Simulator(model, panel.design(), direct).observed_unit_statistics(panel))
    hand = load_scenario(write(tmp_path, PK_VARIANT.replace("options = { start = [1.0, 0.04, 0.5], prior_sd = 2.0 }", 'kind = "hand"')))
    assert "concentration.log_auc" in simfit.Simulator(model, panel.design(), hand.build()[1]).unit_names


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('error = "additive"', 'eror = "additive"', r"\[model\] options: unknown option\(s\) eror of pk.model\(\); accepted names are "
         r"random, error, elimination, sigma_add\."),
        ('random = ["ka", "cl"]', 'random = "ka"', r"\[model\] options.random: expected a list of strings \(pk.model\(\)\), got str 'ka'"),
        ('error = "additive"', "error = 1", r"\[model\] options.error: expected a string \(pk.model\(\)\), got int 1"),
        ('random = ["ka", "cl"]', 'random = ["ka", "q"]', r"\[model\] options: pk.model: random names 'q'; choose among ka, cl, ke"),
        ("prior_sd = 2.0", 'kind = "auxiliary"', r"\[statistics\] options: unknown option\(s\) kind of pk.statistics\(\); accepted names are "
         r"start, prior_sd, center, sane_width, max_iter"),
        ("start = [1.0, 0.04, 0.5]", 'start = "x"', r"\[statistics\] options.start: expected a list of numbers"),
        ("prior_sd = 2.0", "prior_sd = true", r"\[statistics\] options.prior_sd: expected a number or a string or a list of numbers"),
        ("start = [1.0, 0.04, 0.5]", "start = [1.0, 0.04]", r"\[statistics\] options: pk: start takes three positive numbers"),
        ('name = "pk"', 'name = "random_intercept"', r"\[model\] options: unknown option\(s\) elimination, error, random of "
         r"random_intercept.model\(\); accepted names are none"),
        ('name = "pk"', 'name = "my.py:build"', r"\[model\] options: options are keyword arguments of a built-in model's model\(\)"),
    ],
)
def test_bad_options_are_one_line_errors_naming_the_file_the_key_and_the_accepted_names(tmp_path, old, new, message):
    path = write(tmp_path, PK_VARIANT.replace(old, new))
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_fixed_parameters_are_held_and_truth_and_start_may_omit_them(tmp_path):
    text = PK_VARIANT + "[fixed]\nsigma_add = 0.5\n[start]\nlog_cl = -3.0\nsigma_add = 0.5\n"
    sc = load_scenario(write(tmp_path, text))
    model, _ = sc.build()
    assert model.fixed == {"sigma_add": 0.5} and "sigma_add" not in model.param_names
    assert "sigma_add" not in sc.truth and sc.start == {"log_cl": -3.0}
    assert set(sc.start_values()) == set(model.param_names)
    omitted = load_scenario(write(tmp_path, text.replace("sigma_add = 0.5\n[fixed]", "[fixed]")))
    assert omitted.truth == sc.truth and omitted.truth_spec().truth(model, 0, 0) == sc.truth


@pytest.mark.parametrize(
    "extra, message",
    [
        ("[fixed]\nsigma_add = 0.4\n", r"\[truth\] sigma_add = 0.5, but \[fixed\] holds it at 0.4; a fixed parameter keeps its value"),
        ("[fixed]\nsigma_add = 0.5\n[start]\nsigma_add = 1.0\n", r"\[start\] sigma_add = 1, but \[fixed\] holds it at 0.5"),
        ("[fixed]\nsigma_add = 0.5\n[prior]\nsigma_add = { dist = \"halfnormal\", scale = 1 }\n",
         r"\[prior\] sigma_add: the parameter is held at 0.5 by \[fixed\], so it is not drawn"),
        ("[fixed]\nsigma_add = 0.5\n[grid]\nsigma_add = [0.5, 1.0]\n", r"\[grid\] sigma_add: the parameter is held at 0.5 by \[fixed\], so it is not varied"),
        ("[fixed]\nsigma = 0.5\n", r"\[fixed\] Cannot fix unknown parameter 'sigma'"),
        ("[fixed]\nsigma_add = -0.5\n", r"\[fixed\] The fixed value of 'sigma_add' \(-0.5\) lies outside its bounds"),
        ("[fixed]\nsigma_add = \"x\"\n", r"\[fixed\] sigma_add: expected a number"),
    ],
)
def test_fixed_values_that_disagree_or_do_not_fit_the_model_are_errors_naming_the_key(tmp_path, extra, message):
    text = PK_VARIANT if r"\[truth\]" in message else PK_VARIANT.replace("sigma_add = 0.5\n", "")  # [truth] may omit it
    path = write(tmp_path, text + extra)
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)

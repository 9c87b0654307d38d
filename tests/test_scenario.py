"""Scenario files: shipped scenarios load; invalid files give errors naming file and key."""

from pathlib import Path

import pytest

from simfit.errors import ScenarioError
from simfit.scenario import load_scenario, resolve_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["quickstart", "lognormal", "three_level"])
def test_shipped_scenarios_load(name):
    sc = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    model = sc.build_model()
    assert set(sc.truth) == set(model.param_names)
    assert sc.design.panel().n_levels == model.n_levels


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
        (GOOD + "[fit]\nx = 1\n", r"unknown section\(s\) \[fit\]"),
        (GOOD.replace("units = 10", "units = 10\nunit = 3"), r"\[design\]: unknown key\(s\) unit"),
        (GOOD.replace("units = 10", 'units = "ten"'), r"\[design\] units: expected an integer"),
        (GOOD.replace("tau = 0.5", 'tau = "x"'), r"\[truth\] tau: expected a number"),
        (GOOD.replace("tau = 0.5", "tau = -0.5"), "outside its bounds"),
        (GOOD.replace("sigma = 1", ""), "Missing value"),
        (GOOD.replace('name = "random_intercept"', 'name = "nope"'), "unknown model 'nope'"),
        (GOOD.replace('name = "random_intercept"', 'name = "nopkg.mod:f"'), "cannot import module"),
        (GOOD.replace("observations = 5", ""), "missing required key 'observations'"),
        (GOOD.replace("observations = 5", "observations = 5\ngroups = 2"), "set 'groups' exactly"),
        ("[model\n", "not valid TOML"),
    ],
)
def test_invalid_scenarios(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(path)
    assert str(path) in str(err.value) or "TOML" in str(err.value)


def test_missing_file():
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario("/nonexistent/x.toml")


def test_user_model_by_import_path():
    model, stats = resolve_model("simfit.models.random_intercept:model")
    assert model.name == "random_intercept" and stats is None

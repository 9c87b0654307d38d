"""Population PK: the concentration curve, recovery, and fitting the shipped long data file."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

import simfit
from simfit.cli import main
from simfit.errors import ModelError, StatisticsError
from simfit.models import pk
from simfit.population import LogNormal, MvNormal, population_level

ROOT = Path(__file__).resolve().parent.parent
TRUTH = {"log_ka": math.log(1.5), "ka_sd": 0.3, "log_cl": math.log(3.0), "cl_sd": 0.3, "log_v": math.log(30.0), "v_sd": 0.2, "rho": 0.5, "sigma_prop": 0.1}


def _refuse(name):
    raise ValueError(f"non-JSON constant {name}")


def test_noise_free_curve_is_the_one_compartment_solution():
    truth = {**TRUTH, "ka_sd": 1e-12, "cl_sd": 1e-12, "v_sd": 1e-12, "sigma_prop": 1e-12}
    model = pk.model(sigma_add=0.0)
    design = pk.design(3)
    y = simfit.Simulator(model, design).simulate(truth, seed=1).values[0, :, 0]
    t, dose = design.covariates[:, 0], design.covariates[:, 1]
    ka, cl, v = 1.5, 3.0, 30.0
    ke = cl / v
    expected = dose * ka / (v * (ka - ke)) * (np.exp(-ke * t) - np.exp(-ka * t))
    assert np.allclose(y, expected, rtol=1e-9)


def test_recovered_within_4_standard_errors():
    model = pk.model()
    data = simfit.Simulator(model, pk.design(60)).simulate(TRUTH, seed=2).panel(0)
    res = simfit.fit(model, data, pk.statistics(), seed=1, bootstrap=0)  # sandwich standard errors suffice here
    assert res.converged
    for name, value in TRUTH.items():
        assert abs(res.params[name] - value) < 4 * res.se()[name], name


def test_fit_the_example_data_file_from_the_command_line(capsys):
    # Subjects have their own sampling times (and two doses) in the file.
    code = main(["fit", str(ROOT / "scenarios" / "pk.toml"), "--data", str(ROOT / "scenarios" / "data" / "pk_example.csv"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1], parse_constant=_refuse)  # strict JSON
    assert summary["converged"]
    for name, value in TRUTH.items():  # the file was simulated at TRUTH
        assert abs(summary["params"][name] - value) < 4 * summary["se"][name], name


def test_fit_the_nonmem_style_example_through_its_column_mapping(tmp_path, capsys):
    folder = ROOT / "scenarios" / "data"
    out = tmp_path / "pk_fit"
    argv = ["fit", str(folder / "pk_nonmem.toml"), "--data", str(folder / "pk_nonmem.csv"), "--bootstrap", "0", "--out", str(out), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1], parse_constant=_refuse)
    for name, value in TRUTH.items():  # the same data as pk_example.csv, simulated at TRUTH
        assert abs(summary["params"][name] - value) < 4 * summary["se"][name], name
    assert {"estimates.csv", "fit.json", "summary.txt", "statistics.csv", "statistics.png", "population.csv"} <= set(p.name for p in out.iterdir())


# ---------------------------------------------------------------------- variants

VARIANTS = [
    ({}, ("log_ka", "ka_sd", "log_cl", "cl_sd", "log_v", "v_sd", "rho", "sigma_prop"), ("ka", "cl", "v")),
    ({"random": ["ka", "cl"], "error": "additive", "elimination": "ke"}, ("log_ka", "ka_sd", "log_cl", "cl_sd", "log_ke", "sigma_add"), ("ka", "cl", "ke")),
    ({"random": ["cl", "v"], "error": "combined"}, ("log_ka", "log_cl", "cl_sd", "log_v", "v_sd", "rho", "sigma_prop", "sigma_add"), ("ka", "cl", "v")),
    ({"random": ["ka", "v"]}, ("log_ka", "ka_sd", "log_cl", "log_v", "v_sd", "sigma_prop"), ("ka", "cl", "v")),
    ({"random": [], "error": "additive"}, ("log_ka", "log_cl", "log_v", "sigma_add"), ("ka", "cl", "v")),
    ({"elimination": "ke"}, ("log_ka", "ka_sd", "log_cl", "cl_sd", "log_ke", "ke_sd", "rho", "sigma_prop"), ("ka", "cl", "ke")),
]
VALUES = {"log_ka": math.log(1.5), "ka_sd": 0.3, "log_cl": math.log(3.0), "cl_sd": 0.3, "log_v": math.log(30.0), "v_sd": 0.2,
          "log_ke": math.log(0.1), "ke_sd": 0.2, "rho": 0.5, "sigma_prop": 0.1, "sigma_add": 0.2}


@pytest.mark.parametrize("options, params, subject", VARIANTS)
def test_each_variant_has_its_documented_parameters_and_simulates(options, params, subject):
    model = pk.model(**options)
    assert model.param_names == params and model.levels[0].params == subject
    truth = {n: VALUES[n] for n in params}
    sim = simfit.Simulator(model, pk.design(30)).simulate(truth, seed=3)
    assert np.isfinite(sim.values).all()
    drawn = sim.params["subject"][0]
    for j, name in enumerate(subject):  # subject parameters without a random effect are one value for all
        varies = name in options.get("random", subject)
        assert (np.ptp(np.log(drawn[:, j])) > 0.1) == varies, name
        if not varies:
            assert np.allclose(drawn[:, j], math.exp(truth[f"log_{name}"]), rtol=1e-12)
    if "cl" in options.get("random", subject) and subject[2] in options.get("random", subject):  # rho correlates them
        assert np.corrcoef(np.log(drawn[:, 1:]).T)[0, 1] > 0.2


def test_with_ke_elimination_each_subjects_volume_is_its_clearance_over_ke():
    model = pk.model(random=["ka", "cl"], error="additive", elimination="ke")
    truth = {"log_ka": math.log(1.5), "ka_sd": 0.3, "log_cl": math.log(3.0), "cl_sd": 0.3, "log_ke": math.log(0.1), "sigma_add": 1e-12}
    design = pk.design(5)
    result = simfit.Simulator(model, design).simulate(truth, seed=4)
    ka, cl, ke = result.params["subject"][0].T
    t, dose = design.covariates[:, 0], design.covariates[:, 1]
    unit = np.repeat(np.arange(5), design.obs_per_unit)
    v = cl[unit] / ke[unit]
    expected = dose * ka[unit] / (v * (ka[unit] - ke[unit])) * (np.exp(-ke[unit] * t) - np.exp(-ka[unit] * t))
    assert np.allclose(result.values[0, :, 0], expected, rtol=1e-9, atol=1e-10)


def test_additive_error_is_additive_and_proportional_error_grows_with_the_curve():
    design = pk.design(200)
    base = {"log_ka": math.log(1.5), "log_cl": math.log(3.0), "log_v": math.log(30.0)}
    additive = simfit.Simulator(pk.model(random=[], error="additive"), design).simulate({**base, "sigma_add": 0.3}, seed=5)
    exact = simfit.Simulator(pk.model(random=[], error="additive"), design).simulate({**base, "sigma_add": 1e-12}, seed=5)
    residual = (additive.values - exact.values)[0, :, 0]
    assert abs(np.std(residual) - 0.3) < 0.03 and abs(np.corrcoef(np.abs(residual), exact.values[0, :, 0])[0, 1]) < 0.1


@pytest.mark.parametrize(
    "options, message",
    [
        ({"random": ["ka", "q"]}, r"random names 'q'; choose among ka, cl, v"),
        ({"random": ["ka", "v"], "elimination": "ke"}, r"choose among ka, cl, ke \(with elimination='ke' each subject's V is CL / ke\)"),
        ({"random": "ka"}, "random must be a list of names"),
        ({"error": "exponential"}, "error must be one of 'proportional', 'additive', 'combined'"),
        ({"elimination": "k"}, "elimination must be one of 'volume', 'ke'"),
        ({"error": "additive", "sigma_add": 0.5}, r"sigma_add is a parameter, estimated; hold it at 0.5 with model\(...\).fix"),
        ({"sigma_add": -1.0}, "sigma_add must be a non-negative number"),
    ],
)
def test_bad_variant_options_name_the_option_and_the_choices(options, message):
    with pytest.raises(ModelError, match=message):
        pk.model(**options)


def test_the_default_model_is_the_model_it_always_was():
    # The default call builds today's model exactly (parameters, level and observation args), so
    # existing results, goldens and checkpoint fingerprints stay as they are; naming all three
    # random effects is the default too.
    for model in (pk.model(), pk.model(random=["v", "cl", "ka"], error="proportional", elimination="volume")):
        assert model.param_names == tuple(p.name for p in pk.PARAMS)
        assert model.observations.args.tolist() == [7.0, pk.SIGMA_ADD]
        old = population_level("subject", [LogNormal("ka", "log_ka", "ka_sd"), MvNormal(("cl", "v"), ("log_cl", "log_v"), ("cl_sd", "v_sd"), ("rho",), links=("log", "log"))], pk.PARAMS)
        assert np.array_equal(model.levels[0].args, old.args)


def test_a_variant_is_recovered_within_4_standard_errors():
    # The usual published model of oral theophylline-like data: random ka and CL, V = CL / ke, additive error.
    model = pk.model(random=["ka", "cl"], error="additive", elimination="ke")
    truth = {"log_ka": math.log(1.5), "ka_sd": 0.3, "log_cl": math.log(3.0), "cl_sd": 0.3, "log_ke": math.log(0.1), "sigma_add": 0.2}
    data = simfit.Simulator(model, pk.design(24)).simulate(truth, seed=2).panel(0)
    res = simfit.fit(model, data, pk.statistics(), seed=1, bootstrap=0, search_width=1.0)
    assert res.converged
    for name, value in truth.items():
        assert abs(res.params[name] - value) < 4 * res.se()[name], name


def _per_kg_panel():
    model = pk.model(random=["ka", "cl"], error="additive", elimination="ke")
    truth = {"log_ka": 0.45, "ka_sd": 0.5, "log_cl": math.log(0.04), "cl_sd": 0.2, "log_ke": math.log(0.09), "sigma_add": 0.3}
    times = np.array([0.25, 0.5, 1, 2, 3.5, 5, 7, 9, 12, 24.0])
    covs = [np.column_stack([times, np.full(times.size, 4.5)])] * 12  # 4.5 mg/kg
    design = simfit.Panel.from_units([np.zeros(times.size)] * 12, covariates=covs, value_names=("concentration",), covariate_names=("time", "dose")).design()
    return model, simfit.Simulator(model, design).simulate(truth, seed=1).panel(0)


def test_statistics_take_the_start_and_options_of_the_subjects_fits():
    # Centred on the start with a tight penalty, each subject's CL estimate stays at the start's.
    model, panel = _per_kg_panel()
    for cl in (0.04, 0.08):
        sim = simfit.Simulator(model, panel.design(), pk.statistics(start=(1.0, cl, 0.5), center="start", prior_sd=0.01))
        table = sim.observed_unit_statistics(panel)
        assert abs(np.nanmedian(table[:, sim.unit_names.index("concentration.nls.log_cl")]) - math.log(cl)) < 0.02
    sim = simfit.Simulator(model, panel.design(), pk.statistics(center="start", prior_sd=0.01))  # held at CL = 3: no fit
    assert (sim.observed_unit_statistics(panel)[:, sim.unit_names.index("concentration.nls.converged")] != 1).all()
    with pytest.raises(StatisticsError, match=r"start takes three positive numbers"):
        pk.statistics(start=(1.0, 0.04))
    with pytest.raises(ValueError, match=r"start apply to kind='auxiliary'"):
        pk.statistics("hand", start=(1.0, 0.04, 0.5))

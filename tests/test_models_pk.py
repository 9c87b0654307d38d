"""Population PK: the concentration curve, recovery, and fitting the shipped long data file."""

import json
import math
from pathlib import Path

import numpy as np

import simfit
from simfit.cli import main
from simfit.models import pk

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

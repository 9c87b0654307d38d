"""Regenerate pk_example.csv: a real-style long data file (subject, time, dose, concentration)
simulated from the population PK model, with subject-specific sampling times and two dose levels.

Usage: python scenarios/data/make_pk_example.py
"""

import math
from pathlib import Path

import numpy as np

import simfit
from simfit.models import pk

TRUTH = {"log_ka": math.log(1.5), "ka_sd": 0.3, "log_cl": math.log(3.0), "cl_sd": 0.3, "log_v": math.log(30.0), "v_sd": 0.2, "rho": 0.5, "sigma_prop": 0.1}

rng = np.random.default_rng(20261125)
n = 48
covs, ids = [], []
for i in range(n):
    k = rng.integers(6, len(pk.NOMINAL_TIMES) + 1)  # some subjects miss late samples
    times = np.sort(np.asarray(pk.NOMINAL_TIMES[:k]) * rng.uniform(0.85, 1.15, k))
    covs.append(np.column_stack([np.round(times, 3), np.full(k, 100.0 if i % 2 else 200.0)]))
    ids.append(f"S{i + 1:03d}")
design = simfit.Panel.from_units([np.zeros(len(c)) for c in covs], covariates=covs, value_names=("concentration",), covariate_names=("time", "dose"), unit_ids=ids).design()
panel = simfit.Simulator(pk.model(), design).simulate(TRUTH, seed=7).panel(0)
frame = panel.to_frame().rename(columns={"unit": "subject"})[["subject", "time", "dose", "concentration"]]
frame["concentration"] = frame["concentration"].round(4)
frame.to_csv(Path(__file__).with_name("pk_example.csv"), index=False)
print(frame.head())

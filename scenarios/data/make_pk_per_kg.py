"""Regenerate pk_per_kg.csv: a SYNTHETIC data set in the shape of the public oral theophylline
data (12 subjects, one oral dose in mg/kg, 11 samples from 0 to 24 h, concentrations in mg/L),
simulated from the model usually published for such data: random effects on ka and CL only, each
subject's V = CL / ke with ke common to all, additive residual error (``pk.model(random=("ka",
"cl"), error="additive", elimination="ke")``). No value is taken from a real data set; the
generating values are TRUTH below (and the [truth] of pk_per_kg.toml).

Like the real data, every subject took the same dose in mg (320 mg), so the dose per kg varies
with body weight (3.7-5.9 mg/kg here), and sampling times stray from the nominal ones. Recorded
as an assay would: concentrations rounded to 0.01 mg/L, a negative reading reported as 0, and the
pre-dose sample reported as 0 unless it reads above the assay's quantification limit (0.4 mg/L),
so that a couple of subjects show a small positive concentration at time 0. None of this changes
the statistics: the subjects' curve fits leave out readings <= 0 and samples where the curve is
exactly 0 (time 0, before absorption).

Usage: python scenarios/data/make_pk_per_kg.py [OUT.csv]
"""

import math
import sys
from pathlib import Path

import numpy as np

import simfit
from simfit.models import pk

TRUTH = {"log_ka": 0.45, "ka_sd": 0.6, "log_cl": -3.2, "cl_sd": 0.2, "log_ke": -2.45, "sigma_add": 0.5}
NOMINAL_TIMES = (0.0, 0.25, 0.5, 1.0, 2.0, 3.5, 5.0, 7.0, 9.0, 12.0, 24.0)  # h
DOSE_MG = 320.0
LLOQ = 0.4  # mg/L, the quantification limit applied to pre-dose samples
SEED = 20260214


def main(out: Path) -> None:
    rng = np.random.default_rng(SEED)
    n = 12
    weights = np.round(rng.uniform(54.0, 87.0, n), 1)
    doses = np.round(DOSE_MG / weights, 2)  # mg/kg
    covs = []
    for dose in doses:
        times = np.asarray(NOMINAL_TIMES) * rng.uniform(0.85, 1.15, len(NOMINAL_TIMES))
        covs.append(np.column_stack([np.round(times, 2), np.full(len(times), dose)]))
    design = simfit.Panel.from_units(
        [np.zeros(len(c)) for c in covs], covariates=covs, value_names=("concentration",), covariate_names=("time", "dose"),
        unit_ids=list(range(1, n + 1)),
    ).design()
    model = pk.model(random=("ka", "cl"), error="additive", elimination="ke")
    frame = simfit.Simulator(model, design).simulate(TRUTH, seed=SEED).panel(0).to_frame()
    conc = frame["concentration"].to_numpy()
    conc = np.where((frame["time"].to_numpy() == 0.0) & (conc <= LLOQ), 0.0, np.maximum(conc, 0.0))
    frame["concentration"] = np.round(conc, 2) + 0.0  # no -0.0
    frame["weight"] = np.repeat(weights, [len(c) for c in covs])
    frame = frame.rename(columns={"unit": "subject", "weight": "weight_kg", "dose": "dose_mg_per_kg", "time": "time_h",
                                  "concentration": "conc_mg_L"})
    frame[["subject", "weight_kg", "dose_mg_per_kg", "time_h", "conc_mg_L"]].to_csv(out, index=False)
    print(f"{out}: {n} subjects; ka = {math.exp(TRUTH['log_ka']):.3g} /h, CL = {math.exp(TRUTH['log_cl']):.3g} L/h/kg, "
          f"ke = {math.exp(TRUTH['log_ke']):.3g} /h; positive at time 0: "
          f"{int(((frame['time_h'] == 0) & (frame['conc_mg_L'] > 0)).sum())} subject(s)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("pk_per_kg.csv"))

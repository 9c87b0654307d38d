"""Engine: common random numbers, determinism across threads and chunks, fused == materialised,
errors that name the failing simulation."""

import os
import re
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from conftest import RI_TRUTH
from numba import njit

import simfit
from simfit import _engine, engine
from simfit import statistics as st
from simfit.data import Panel
from simfit.engine import Simulator
from simfit.errors import ArgumentError, DataError, ModelError, SimulationError
from simfit.model import Level, Model, Observations
from simfit.params import Param
from simfit.population import Normal, population_level
from simfit.random import normal


@pytest.fixture(scope="module")
def ri_sim(ri_model, ri_stats):
    return Simulator(ri_model, Panel.balanced(60, 15), ri_stats)


def test_same_seed_identical_other_seed_different(ri_sim):
    a = ri_sim.statistics(RI_TRUTH, n_sims=3, seed=11)
    b = ri_sim.statistics(RI_TRUTH, n_sims=3, seed=11)
    c = ri_sim.statistics(RI_TRUTH, n_sims=3, seed=12)
    assert np.array_equal(a, b)
    assert not np.any(a == c)


def test_common_random_numbers_make_statistics_smooth_in_psi(ri_sim):
    psi = np.array([1.0, 0.5, 1.0])
    base = ri_sim.statistics(psi, n_sims=4, seed=5)
    diffs = []
    for h in (1e-2, 1e-3, 1e-4):
        moved = ri_sim.statistics(psi + np.array([h, h, h]), n_sims=4, seed=5)
        diffs.append(np.abs(moved - base).max())
    # O(h): a tenfold smaller step gives a tenfold smaller change (no Monte Carlo jump).
    assert 8 < diffs[0] / diffs[1] < 12 and 8 < diffs[1] / diffs[2] < 12
    assert diffs[2] < 1e-3


def test_simulation_s_does_not_depend_on_the_others(ri_sim):
    many = ri_sim.statistics(RI_TRUTH, n_sims=5, seed=2)
    alone = ri_sim.statistics(RI_TRUTH, n_sims=1, seed=2, first_sim=3)
    assert np.array_equal(many[3], alone[0])


def test_identical_across_thread_counts_in_process(ri_sim):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least two Numba threads")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = ri_sim.statistics(RI_TRUTH, n_sims=3, seed=9)
        numba.set_num_threads(2)
        two = ri_sim.statistics(RI_TRUTH, n_sims=3, seed=9)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, two)


def test_identical_with_numba_num_threads_1_and_2():
    code = textwrap.dedent(
        """
        import numba, simfit
        from simfit.models import random_intercept as m
        sim = simfit.Simulator(m.model(), simfit.Panel.balanced(300, 10), m.statistics())
        s = sim.statistics({"mu": 1, "tau": 0.5, "sigma": 1}, n_sims=4, seed=3)
        print(numba.get_num_threads(), s.tobytes().hex())
        """
    )
    outputs = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        n, digest = res.stdout.split()
        assert n == threads
        outputs.append(digest)
    assert outputs[0] == outputs[1]


def test_identical_for_any_chunking(ri_sim, monkeypatch):
    base = ri_sim.statistics(RI_TRUTH, n_sims=2, seed=4)
    for obs_per_chunk in (1, 10**9):
        monkeypatch.setattr(engine, "_OBS_PER_CHUNK", obs_per_chunk)
        assert np.array_equal(ri_sim.statistics(RI_TRUTH, n_sims=2, seed=4), base)
    monkeypatch.setattr(engine, "_TABLE_BYTES", 1)  # one panel per block
    assert np.array_equal(ri_sim.statistics(RI_TRUTH, n_sims=2, seed=4), base)


@njit(cache=True)
def _draw_ab(psi, parent, covariates, args, rng, theta):
    theta[0] = psi[0] + psi[1] * normal(rng)
    theta[1] = psi[2] * covariates[0]


@njit(cache=True)
def _observe_two_values(psi, theta, x, args, rng, y):
    # y0 = a + b * x0 + noise; y1 = 1 if y0 > x1 else 0
    for k in range(y.shape[0]):
        y[k, 0] = theta[0] + theta[1] * x[k, 0] + psi[3] * normal(rng)
        y[k, 1] = 1.0 if y[k, 0] > x[k, 1] else 0.0


def covariate_model():
    params = (Param("mu"), Param("tau", (0, np.inf)), Param("beta"), Param("sigma", (0, np.inf)))
    return Model(
        params=params,
        levels=(Level("unit", ("a", "b"), _draw_ab),),
        observations=Observations(_observe_two_values, values=("y", "hit")),
        name="covariates",
    )


def covariate_design(n_units=30, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 25, size=n_units)
    return Panel.from_units(
        [np.zeros(n) for n in sizes],
        covariates=[np.column_stack([np.linspace(-1, 1, n), rng.normal(size=n)]) for n in sizes],
        unit_covariates=rng.uniform(0.5, 1.5, size=n_units),
        covariate_names=("x", "cut"),
    ).design()


COV_TRUTH = {"mu": 0.5, "tau": 0.3, "beta": 2.0, "sigma": 0.4}


def test_fused_statistics_equal_statistics_of_materialised_panels(tl_model):
    cases = [
        (covariate_model(), covariate_design(), st.Statistics(
            unit=[st.moments("y"), st.ols(["x"], "y"), st.proportions([1.0], "hit"), st.quantiles([0.5], "y")],
            across=["mean", "sd"], extra=[st.corr(("y.mean", "y.ols.x"))],
            pooled=[st.pooled_moments("y", ("mean", "var", "skew"))]), COV_TRUTH),
        (tl_model, Panel.balanced(25, 4, n_groups=3), simfit.models.three_level.statistics(),
         {"mu": 1, "tau_unit": 0.7, "tau_group": 0.5, "sigma": 1}),
    ]
    for model, design, spec, truth in cases:
        sim = Simulator(model, design, spec)
        fused = sim.statistics(truth, n_sims=3, seed=8)
        panels = sim.simulate(truth, n_sims=3, seed=8)
        for s in range(3):
            assert np.array_equal(fused[s], sim.observed(panels.panel(s)))
        assert np.array_equal(
            sim.unit_statistics(truth, n_sims=3, seed=8)[1], sim.observed_unit_statistics(panels.panel(1))
        )


def test_observation_covariates_and_unit_covariates_reach_the_kernels():
    design = covariate_design(n_units=400, seed=1)
    sim = Simulator(covariate_model(), design).simulate(COV_TRUTH, seed=2)
    frame = sim.to_frame()
    # b = beta * unit covariate exactly; y - a - b x is pure noise with sd sigma.
    z = design.level_covariates[0][:, 0]
    assert np.allclose(sim.params["unit"][0, :, 1], COV_TRUTH["beta"] * z)
    resid = frame["y"] - frame["unit.a"] - frame["unit.b"] * frame["x"]
    se = COV_TRUTH["sigma"] / np.sqrt(2 * len(resid))
    assert abs(resid.std() - COV_TRUTH["sigma"]) < 4 * se
    assert np.array_equal(frame["hit"], (frame["y"] > frame["cut"]).astype(float))


def test_engine_compiles_once_for_all_models_and_statistics(ri_sim, tl_model):
    ri_sim.statistics(RI_TRUTH, n_sims=1, seed=1)
    Simulator(tl_model, Panel.balanced(5, 3, n_groups=2), simfit.models.three_level.statistics()).statistics(
        {"mu": 1, "tau_unit": 0.7, "tau_group": 0.5, "sigma": 1}
    )
    Simulator(covariate_model(), covariate_design(), st.Statistics(unit=[st.mean()])).statistics(COV_TRUTH)
    assert len(_engine.simulate_unit_statistics.signatures) == 1
    assert len(_engine.aggregate.signatures) == 1


@njit
def _log_observations(psi, theta, x, args, rng, y):
    for k in range(y.shape[0]):
        y[k, 0] = np.log(theta[0]) + normal(rng)


def test_non_finite_output_names_parameters_simulation_and_unit():
    params = (Param("mu", start=5.0), Param("tau", (0, np.inf), start=0.1))
    unit = population_level("unit", [Normal("a", "mu", "tau")], params)
    model = Model(params, (unit,), Observations(_log_observations))
    sim = Simulator(model, Panel.balanced(20, 5), st.Statistics(unit=[st.mean()]))
    assert np.isfinite(sim.statistics({"mu": 5.0, "tau": 0.1})).all()
    with pytest.raises(SimulationError) as err:
        sim.statistics({"mu": 0.05, "tau": 0.5}, n_sims=2, seed=1)
    message = str(err.value)
    assert "mu: 0.05" in message and "tau: 0.5" in message
    assert "simulation 0, unit" in message and "observation kernel" in message
    with pytest.raises(SimulationError, match="simulation 0, unit"):
        sim.simulate({"mu": 0.05, "tau": 0.5}, seed=1)


@njit
def _wrong_arity(psi, theta, y):
    y[0, 0] = 1.0


@njit
def _draw_with_bad_types(psi, parent, covariates, args, rng, theta):
    theta[0] = rng.normal()  # rng is a simfit stream (uint64 array), not a NumPy Generator


@njit
def _returns_value(psi, parent, covariates, args, rng, theta):
    theta[0] = 1.0
    return 1.0


@njit
def _writes_too_much(psi, parent, covariates, args, rng, theta):
    for j in range(3):
        theta[j] = 1.0


@njit
def _noise(psi, theta, x, args, rng, y):
    for k in range(y.shape[0]):
        y[k, 0] = theta[0] + normal(rng)


@njit
def _writes_extra_column(psi, theta, x, args, rng, y):
    for k in range(y.shape[0]):
        y[k, 0] = theta[0]
        y[k, 1] = theta[0]


@pytest.mark.parametrize(
    "levels, observe, values, message",
    [
        ((Level("u", ("a", "b"), _draw_ab),), _wrong_arity, ("y",), "takes 3 argument"),
        ((Level("u", ("a",), _draw_with_bad_types),), _noise, ("y",), "does not compile for the expected signature"),
        ((Level("u", ("a",), _returns_value),), _noise, ("y",), "must write its results"),
        ((Level("u", ("a",), _writes_too_much),), _noise, ("y",),
         r"draw kernel of level 'u' indexes outside its arrays at line \d+ of test_engine.py, `theta\[j\] = 1.0` \(index 1 "
         r"is out of bounds for axis 0 with size 1\) .* theta has 1 entry \(a\).* declare every parameter the kernel writes"),
        ((Level("u", ("a", "b", "c", "d"), _writes_too_much),), _noise, ("y",), "left parameter"),
        ((Level("u", ("a",), _returns_value.py_func),), _writes_extra_column, ("y",), "must write its results"),
    ],
)
def test_bad_kernels_get_clear_errors(levels, observe, values, message):
    params = (Param("mu"), Param("tau", (0, np.inf)), Param("beta"), Param("sigma", (0, np.inf)))
    with pytest.raises(ModelError, match=message):
        Simulator(Model(params, levels, Observations(observe, values=values)), Panel.balanced(3, 4))


def test_observation_kernel_writing_an_undeclared_column_is_caught():
    @njit
    def one_param(psi, parent, covariates, args, rng, theta):
        theta[0] = psi[0]

    model = Model((Param("mu"),), (Level("u", ("a",), one_param),), Observations(_writes_extra_column, values=("y",)))
    with pytest.raises(ModelError, match=r"`y\[k, 1\] = theta\[0\]` .* y is 4 x 1 \(observations x values y\).* declare every value column"):
        Simulator(model, Panel.balanced(3, 4))


def test_a_kernel_reading_outside_x_is_not_said_to_write_outside_y():
    @njit
    def one_param(psi, parent, covariates, args, rng, theta):
        theta[0] = psi[0]

    @njit
    def reads_a_second_covariate(psi, theta, x, args, rng, y):
        for k in range(y.shape[0]):
            y[k, 0] = theta[0] + x[k, 1]

    model = Model((Param("mu"),), (Level("u", ("a",), one_param),), Observations(reads_a_second_covariate, values=("y",)))
    design = Panel.balanced(3, 4, covariates=np.ones((12, 1)), covariate_names=["dose"])
    with pytest.raises(ModelError) as err:
        Simulator(model, design)
    message = str(err.value)
    assert "`y[k, 0] = theta[0] + x[k, 1]` (index 1 is out of bounds for axis 1 with size 1)" in message
    assert "x is 4 x 1 (observations x covariates dose)" in message and "writes outside" not in message


def test_design_must_match_model_levels(ri_model, tl_model):
    with pytest.raises(DataError, match="level"):
        Simulator(ri_model, Panel.balanced(3, 4, n_groups=2))
    with pytest.raises(DataError, match="level"):
        Simulator(tl_model, Panel.balanced(3, 4))


def test_bad_call_arguments(ri_sim):
    with pytest.raises(ModelError, match="outside its bounds"):
        ri_sim.statistics({"mu": 1, "tau": -0.5, "sigma": 1})
    with pytest.raises(ValueError, match="n_sims"):
        ri_sim.statistics(RI_TRUTH, n_sims=0)
    with pytest.raises(ValueError, match="seed"):
        ri_sim.statistics(RI_TRUTH, seed=-3)
    with pytest.raises(DataError, match="value columns"):
        ri_sim.observed(Panel.from_units([np.ones(15)] * 60, value_names=("z",)))


@njit
def _writes_where_x_is_zero(psi, theta, x, args, rng, y):
    for k in range(y.shape[0]):
        if x[k, 0] == 0.0:
            y[k, 0] = theta[0] + normal(rng)


def test_unwritten_observations_are_caught_whatever_the_chunking(monkeypatch):
    @njit
    def draw(psi, parent, covariates, args, rng, theta):
        theta[0] = psi[0]

    model = Model((Param("mu"),), (Level("u", ("a",), draw),), Observations(_writes_where_x_is_zero))
    # Unit 0 (checked by the start-value probe) has only x == 0; later units leave rows unset.
    covs = [np.zeros(4)] + [np.array([0.0, 1.0, 0.0, 1.0])] * 30
    design = Panel.from_units([np.zeros(4)] * 31, covariates=covs).design()
    sim = Simulator(model, design, st.Statistics(unit=[st.mean()], across=["mean"]))
    for obs_per_chunk in (1, 10**9):
        monkeypatch.setattr(engine, "_OBS_PER_CHUNK", obs_per_chunk)
        with pytest.raises(SimulationError, match=r"produced nan for value 'y' in observation 1 of the unit"):
            sim.statistics({"mu": 1.0}, seed=1)


@njit
def _raises_for_large_units(y, x, groups, args, work, out):
    if y.shape[0] > 5:
        raise ValueError("unit too large")
    out[0] = y[0, 0]


@njit
def _raises_at_negative_mean(psi, theta, x, args, rng, y):
    if theta[0] < -3.0:
        raise ValueError("negative mean")
    for k in range(y.shape[0]):
        y[k, 0] = theta[0] + normal(rng)


def test_a_raising_statistic_kernel_is_reported_with_the_unit():
    spec = st.Statistics(unit=[st.UnitStatistic(_raises_for_large_units, ("first",))], across=["mean"])
    units = [np.zeros(3)] * 50 + [np.zeros(8)] + [np.zeros(3)] * 50
    with pytest.raises(simfit.StatisticsError, match="y.first raised ValueError: unit too large on observed unit 50"):
        simfit.panel_statistics(spec, Panel.from_units(units))


def test_a_raising_observation_kernel_is_reported_with_simulation_and_unit():
    params = (Param("mu"), Param("tau", (0, np.inf)))
    unit = population_level("unit", [Normal("a", "mu", "tau")], params)
    model = Model(params, (unit,), Observations(_raises_at_negative_mean))
    sim = Simulator(model, Panel.balanced(2000, 3), st.Statistics(unit=[st.mean()], across=["mean"]))
    for call in (lambda: sim.statistics({"mu": 0.0, "tau": 1.0}, n_sims=2, seed=3),
                 lambda: sim.simulate({"mu": 0.0, "tau": 1.0}, n_sims=2, seed=3)):
        with pytest.raises(SimulationError, match=r"observation kernel raised ValueError: negative mean .*simulation 0, unit \d+"):
            call()


def test_observed_panel_must_have_the_simulator_design(ri_sim):
    with pytest.raises(DataError, match="differs from the simulator's"):
        ri_sim.observed(Panel.from_units([np.ones(4)] * 7))
    other = Panel.from_units([np.ones(15)] * 60, covariates=[np.ones(15)] * 60)
    with pytest.raises(DataError, match="value columns|covariates"):
        ri_sim.observed(other)


@njit
def _allocating_statistic(y, x, groups, args, work, out):
    # Allocates (blocks the size of the engine's scratch buffers) and scribbles: must never land
    # on memory the engine is still using.
    total = 0.0
    for size in (y.shape[0], y.shape[0] * y.shape[1], 6, 1, 2):
        tmp = np.full(size, -7.0)
        total += tmp.sum()
    out[0] = total + y[0, 0]


def test_scratch_buffers_outlive_their_use_under_allocation(ri_model):
    spec = st.Statistics(
        unit=[st.UnitStatistic(_allocating_statistic, ("alloc",)), st.quantiles([0.1, 0.5, 0.9])],
        across=["mean", "sd"],
    )
    sim = Simulator(ri_model, Panel.balanced(3000, 30), spec)
    fused = sim.statistics(RI_TRUTH, n_sims=2, seed=6)
    panels = sim.simulate(RI_TRUTH, n_sims=2, seed=6)
    for s in range(2):
        assert np.array_equal(fused[s], sim.observed(panels.panel(s)))


def test_batch_of_parameter_vectors_equals_one_call_per_vector(ri_sim, monkeypatch):
    rows = np.array([[1.0, 0.5, 1.0], [0.0, 0.2, 2.0], [-1.0, 1.5, 0.5]])
    batch = ri_sim.statistics_batch(rows, n_sims=4, seed=3, first_sim=7)
    for p in range(3):
        assert np.array_equal(batch[p], ri_sim.statistics(rows[p], n_sims=4, seed=3, first_sim=7 + 4 * p))
    # Blocks that split a vector's panels give the same result.
    monkeypatch.setattr(engine, "_TABLE_BYTES", 60 * 4 * 8 * 5)
    assert np.array_equal(batch, ri_sim.statistics_batch(rows, n_sims=4, seed=3, first_sim=7))


def test_a_first_simulation_per_row_gives_each_row_those_keys_in_one_launch(ri_sim, monkeypatch):
    rows = np.array([[1.0, 0.5, 1.0], [0.0, 0.2, 2.0], [-1.0, 1.5, 0.5]])
    firsts = np.array([5, 6, 5])  # overlapping windows of one stream, and a row sharing keys
    batch = ri_sim.statistics_batch(rows, n_sims=4, seed=3, first_sim=firsts)
    for p in range(3):
        assert np.array_equal(batch[p], ri_sim.statistics(rows[p], n_sims=4, seed=3, first_sim=int(firsts[p])))
    monkeypatch.setattr(engine, "_TABLE_BYTES", 60 * 4 * 8 * 5)
    assert np.array_equal(batch, ri_sim.statistics_batch(rows, n_sims=4, seed=3, first_sim=firsts))
    with pytest.raises(ArgumentError, match="one per row"):
        ri_sim.statistics_batch(rows, n_sims=4, first_sim=np.array([1, 2]))


def test_batch_rows_are_validated(ri_sim):
    with pytest.raises(ArgumentError, match=r"shape \(n_psi, 3\)"):
        ri_sim.statistics_batch(np.zeros((2, 2)))
    with pytest.raises(ModelError, match="'tau' = -0.5 lies outside its bounds"):
        ri_sim.statistics_batch(np.array([[1.0, 0.5, 1.0], [1.0, -0.5, 1.0]]))
    with pytest.raises(ArgumentError, match="failures"):
        ri_sim.statistics_batch(np.ones((1, 3)), failures="skip")


def test_unit_parameters_come_with_the_unit_statistics(ri_sim):
    psi = np.array([1.0, 0.5, 1.0])
    table, theta = ri_sim.unit_statistics(psi, n_sims=3, seed=4, return_params=True)
    assert np.array_equal(table, ri_sim.unit_statistics(psi, n_sims=3, seed=4))
    assert np.array_equal(theta, ri_sim.simulate(psi, n_sims=3, seed=4).params["unit"])
    rows = np.repeat(psi[None], 3, axis=0)
    t2, th2 = ri_sim.unit_statistics(rows, n_sims=3, seed=4, return_params=True)
    assert np.array_equal(table, t2) and np.array_equal(theta, th2)
    with pytest.raises(ArgumentError, match="row per simulation"):
        ri_sim.unit_statistics(rows, n_sims=2)


@njit(cache=True)
def _noise_nan_above_two(psi, theta, x, args, rng, y):
    for k in range(y.shape[0]):
        y[k, 0] = theta[0] + normal(rng) if psi[1] < 2.0 else np.nan


def test_failed_vectors_become_nan_rows_when_asked(ri_model, ri_stats):
    model = Model(ri_model.params, ri_model.levels, Observations(_noise_nan_above_two), name="fails above two")
    sim = Simulator(model, Panel.balanced(20, 5), ri_stats)
    rows = np.array([[0.0, 0.5, 1.0], [0.0, 3.0, 1.0], [1.0, 0.5, 1.0]])
    out = sim.statistics_batch(rows, n_sims=2, seed=1, failures="nan")
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
    assert np.array_equal(out[2], sim.statistics(rows[2], n_sims=2, seed=1, first_sim=4))
    with pytest.raises(SimulationError, match="Non-finite simulation output"):
        sim.statistics_batch(rows, n_sims=2, seed=1)


@pytest.mark.parametrize(
    ("units", "obs", "edit", "message"),
    [
        # A value of 1e300 was blamed on "a variance of units with one observation".
        (20, 5, lambda f: f.assign(y=f["y"].where(f.index != 7, 1e300)),
         r"^Statistic\(s\) sd:y.mean are NaN or infinite on the observed data: unit 'S001' has y = 1e\+300 \(its "
         r"observation 3 of 5\), beyond 1e\+150, where squares overflow; rescale the values or correct that entry.$"),
        (6, 1, None, r"mean:y.var, sd:y.var .* y.var is undefined for every unit \(each has one observation\)"),
        (1, 5, None, r"sd:y.mean, sd:y.var .* an aggregate across units is not \(a spread needs two units"),
    ],
)
def test_statistics_undefined_on_the_data_are_explained_by_their_cause(ri_model, ri_stats, units, obs, edit, message):
    frame = simfit.simulate(ri_model, Panel.balanced(units, obs), RI_TRUTH, seed=2).panel(0).to_frame()
    frame["unit"] = [f"S{u:03d}" for u in frame["unit"]]
    panel = Panel.from_frame(edit(frame) if edit else frame, unit="unit", values="y")
    with pytest.raises(simfit.errors.EstimationError, match=message) as err:
        simfit.fit(ri_model, panel, ri_stats)
    assert "np." not in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("units", "obs", "message"),
    [
        (6, 1, r"^Statistic\(s\) mean:y.var, sd:y.var are NaN or infinite in 3 of 3 panels simulated at \{mu: 1, tau: 0.5, "
               r"sigma: 1\}; in panel 0 \(seed 4\): y.var is NaN for every unit\. Fix: use statistics defined for every panel"),
        (1, 5, r"sd:y.mean, sd:y.var .* in panel 0 \(seed 4\): y.mean, y.var are defined for one unit only \(a spread or "
               r"correlation across units needs two\)"),
    ],
)
def test_statistics_undefined_in_simulated_panels_are_explained_by_their_cause(ri_model, ri_stats, units, obs, message):
    sim = Simulator(ri_model, Panel.balanced(units, obs), ri_stats)
    text = sim.explain_nonfinite(RI_TRUTH, n_sims=3, seed=4)
    assert re.search(message, text) and "\n" not in text, text
    assert sim.explain_nonfinite(RI_TRUTH, n_sims=3, seed=4, draws=sim.statistics(RI_TRUTH, n_sims=3, seed=4)) == text
    assert Simulator(ri_model, Panel.balanced(20, 5), ri_stats).explain_nonfinite(RI_TRUTH, n_sims=3, seed=4) == ""


def test_failed_auxiliary_fits_in_a_simulated_panel_are_counted_by_reason():
    # Doses per kg with the PK fits held at a start in mg and L: every subject's fit fails.
    from simfit.models import pk

    model = pk.model(random=["ka", "cl"], error="additive", elimination="ke")
    truth = {"log_ka": 0.45, "ka_sd": 0.5, "log_cl": np.log(0.04), "cl_sd": 0.2, "log_ke": np.log(0.09), "sigma_add": 0.3}
    times = np.array([0.25, 0.5, 1, 2, 3.5, 5, 7, 9, 12, 24.0])
    design = Panel.from_units([np.zeros(10)] * 12, covariates=[np.column_stack([times, np.full(10, 4.5)])] * 12,
                              value_names=("concentration",), covariate_names=("time", "dose")).design()
    sim = Simulator(model, design, pk.statistics(center="start", prior_sd=0.01))
    text = sim.explain_nonfinite(truth, n_sims=2, seed=1, first_sim=5)
    assert re.search(r"are NaN or infinite in 2 of 2 panels simulated at \{log_ka: 0.45, .*\}; in panel 5 \(seed 1\): the auxiliary "
                     r"fits concentration.nls failed on 12 of 12 units \(12 fitted worse than a constant \(residual sd above twice "
                     r"the data's\)\); concentration.nls.log_kd, concentration.nls.log_cl, concentration.nls.log_v, "
                     r"concentration.nls.log_sd are NaN for every unit\. Fix: start the auxiliary fits nearer the data", text), text

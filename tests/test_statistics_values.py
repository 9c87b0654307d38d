"""Per-unit values as statistics, and declared output lengths checked at set-up."""

import numpy as np
import pytest
from numba import njit

import simfit
from simfit import statistics as st
from simfit.data import Panel
from simfit.engine import panel_statistics
from simfit.errors import StatisticsError
from simfit.models import random_intercept

TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}


def test_values_are_the_units_observations_named_by_unit():
    panel = Panel.from_units([np.array([[v]]) for v in (0.5, -1.0, 2.0)], value_names=("y",), unit_ids=["a", "b", "c"])
    stats = panel_statistics(st.Statistics(unit=[st.values()], across=[]), panel)
    assert list(stats.index) == ["y[a]", "y[b]", "y[c]"]
    assert stats.to_numpy().tolist() == [0.5, -1.0, 2.0]
    two = Panel.from_units([np.array([[1.0], [2.0]]), np.array([[3.0], [4.0]])], value_names=("y",))
    both = panel_statistics(st.Statistics(unit=[st.values(names=["p", "q"]), st.mean()], across=["mean"]), two)
    assert dict(both) == {"mean:y.mean": 2.5, "y[p].0": 1.0, "y[p].1": 2.0, "y[q].0": 3.0, "y[q].1": 4.0}


def test_values_of_simulated_panels_follow_the_simulation():
    sim = simfit.Simulator(random_intercept.model(), Panel.balanced(5, 1), st.Statistics(unit=[st.values()], across=[]))
    data = sim.simulate(TRUTH, n_sims=2, seed=4)
    stats = sim.statistics(TRUTH, n_sims=2, seed=4)
    for s in range(2):
        assert np.array_equal(stats[s], data.panel(s).values[:, 0])


@pytest.mark.parametrize(
    ("kwargs", "design", "message"),
    [
        ({"names": ["a", "b"]}, Panel.balanced(3, 1), "2 name(s) given for a panel of 3 units"),
        ({"names": ["a", "b", "c", "d"]}, Panel.balanced(3, 1), "4 name(s) given for a panel of 3 units"),
        ({}, Panel.balanced(300, 1), "at most 200"),
    ],
)
def test_values_check_names_and_size_against_the_panel(kwargs, design, message):
    with pytest.raises(StatisticsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        simfit.Simulator(random_intercept.model(), design, st.Statistics(unit=[st.values(**kwargs)], across=[]))


def test_values_refuse_unbalanced_units():
    panel = Panel.from_units([np.ones((1, 1)), np.ones((2, 1))], value_names=("y",))
    with pytest.raises(StatisticsError, match="between 1 and 2 observations"):
        panel_statistics(st.Statistics(unit=[st.values()], across=[]), panel)


@njit(cache=True)
def _writes_three(u, columns, args, work, out):
    for j in range(3):
        out[j] = float(j)


@njit(cache=True)
def _unit_writes_two(y, x, groups, args, work, out):
    out[0] = y[0, 0]
    out[1] = y[-1, 0]


def test_outputs_longer_than_their_names_are_set_up_errors():
    design = Panel.balanced(4, 3)
    model = random_intercept.model()
    short_aggregate = st.Aggregate(_writes_three, ("y.mean",), ("a", "b"))
    with pytest.raises(StatisticsError, match="declares 2 names; give exactly one name per value"):
        simfit.Simulator(model, design, st.Statistics(unit=[st.mean()], across=["mean"], extra=[short_aggregate]))
    short_unit = st.UnitStatistic(_unit_writes_two, labels=("first",))
    with pytest.raises(StatisticsError, match="declares 1 labels; give exactly one label per value"):
        simfit.Simulator(model, design, st.Statistics(unit=[short_unit], across=["mean"]))
    data = simfit.Simulator(model, design).simulate(TRUTH, seed=1).panel(0)
    with pytest.raises(StatisticsError, match="declares 1 labels"):
        panel_statistics(st.Statistics(unit=[short_unit], across=["mean"]), data)
    exact = st.Aggregate(_writes_three, ("y.mean",), ("a", "b", "c"))
    sim = simfit.Simulator(model, design, st.Statistics(unit=[st.mean()], across=[], extra=[exact]))
    assert sim.statistics(TRUTH, seed=1)[0].tolist() == [0.0, 1.0, 2.0]


def test_names_beyond_what_a_kernel_writes_are_set_up_errors():
    longer = st.Aggregate(_writes_three, ("y.mean",), ("a", "b", "c", "d"))
    with pytest.raises(StatisticsError, match="declares 4 names but leaves d unwritten"):
        simfit.Simulator(random_intercept.model(), Panel.balanced(4, 3), st.Statistics(unit=[st.mean()], across=[], extra=[longer]))

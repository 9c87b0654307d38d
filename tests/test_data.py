"""Panels: builders, nesting, validation messages."""

import numpy as np
import pandas as pd
import pytest

from simfit.data import Panel
from simfit.errors import DataError


def test_from_units_layout():
    p = Panel.from_units([np.arange(3.0), np.arange(2.0)], covariates=[np.ones(3), np.zeros(2)])
    assert p.n_units == 2 and p.n_obs == 5
    assert np.array_equal(p.unit_offsets, [0, 3, 5])
    assert p.covariates.shape == (5, 1)
    assert np.array_equal(p.unit(1)[:, 0], [0.0, 1.0])


def test_from_frame_groups_rows_by_unit_and_keeps_order():
    df = pd.DataFrame(
        {"id": ["b", "a", "b", "a", "b"], "y": [1.0, 2.0, 3.0, 4.0, 5.0], "t": [0, 0, 1, 1, 2], "age": [30, 40, 30, 40, 30]}
    )
    p = Panel.from_frame(df, unit="id", values="y", covariates=["t"], unit_covariates=["age"])
    assert list(p.unit_ids) == ["b", "a"]
    assert np.array_equal(p.values[:, 0], [1.0, 3.0, 5.0, 2.0, 4.0])
    assert np.array_equal(p.covariates[:, 0], [0, 1, 2, 0, 1])
    assert np.array_equal(p.level_covariates[0][:, 0], [30, 40])
    back = p.to_frame()
    assert list(back["unit"]) == ["b", "b", "b", "a", "a"]


def test_from_frame_nested_groups():
    df = pd.DataFrame({"school": [1, 1, 1, 2, 2], "cls": [1, 2, 1, 1, 1], "y": [1.0, 2, 3, 4, 5]})
    p = Panel.from_frame(df, unit="school", values="y", group="cls")
    assert p.n_levels == 2
    assert p.level_sizes() == (2, 3)
    assert np.array_equal(p.values[:, 0], [1.0, 3.0, 2.0, 4.0, 5.0])


def test_balanced_design_has_no_values():
    d = Panel.balanced(3, 4, n_groups=2)
    assert not d.has_values and d.n_obs == 24 and d.level_sizes() == (3, 6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(values=[np.array([1.0, np.nan])]), "NaN or infinite"),
        (dict(values=[np.array([1.0, np.inf])]), "NaN or infinite"),
        (dict(values=[np.array([1.0]), np.array([])]), "no observations"),
        (dict(values=[np.ones(3)], covariates=[np.ones(2)]), "2 covariate rows for 3 observations"),
        (dict(values=[np.ones(3)], covariates=[np.ones(3), np.ones(1)]), "one covariate array per unit"),
        (dict(values=[np.ones(3)], groups=[[1, 1]]), "add up to 2"),
    ],
)
def test_from_units_errors(kwargs, message):
    with pytest.raises(DataError, match=message):
        Panel.from_units(**kwargs)


def test_from_frame_errors():
    df = pd.DataFrame({"u": [1, 1, 2], "y": [1.0, np.nan, 2.0], "s": ["a", "b", "c"], "z": [1, 2, 3]})
    with pytest.raises(DataError, match="missing or infinite"):
        Panel.from_frame(df, unit="u", values="y")
    with pytest.raises(DataError, match="not found"):
        Panel.from_frame(df, unit="u", values="w")
    with pytest.raises(DataError, match="not numeric"):
        Panel.from_frame(df, unit="u", values="s")
    with pytest.raises(DataError, match="varies within unit"):
        Panel.from_frame(df.fillna(0.0), unit="u", values="y", unit_covariates=["z"])


def test_bad_nesting_is_rejected():
    with pytest.raises(DataError, match="no observations"):
        Panel(values=None, nesting=(np.array([0, 2, 2]),))
    with pytest.raises(DataError, match="must end at"):
        Panel(values=None, nesting=(np.array([0, 2]), np.array([0, 1, 2, 3])))
    with pytest.raises(DataError, match="one row per observation"):
        Panel(values=np.ones(3), nesting=(np.array([0, 2]),))


def test_more_input_errors_are_data_errors():
    with pytest.raises(DataError, match="numeric"):
        Panel(values=np.array(["a", "b"]), nesting=(np.array([0, 2]),))
    with pytest.raises(DataError, match="numeric"):
        Panel.from_units([np.array(["a"])])
    with pytest.raises(DataError, match="rows for 2 units"):
        Panel.from_units([np.ones(2), np.ones(2)], unit_covariates=np.ones(3))
    with pytest.raises(DataError, match="covariate columns"):
        Panel.from_units([np.ones(2), np.ones(2)], covariates=[np.ones((2, 1)), np.ones((2, 2))])
    p = Panel.from_units([np.ones(2)])
    with pytest.raises(DataError, match="out of range"):
        p.unit(1)
    with pytest.raises(DataError, match="out of range"):
        p.unit(-1)
    df = pd.DataFrame({"u": [1, 1, 2], "g": [1.0, np.nan, 1.0], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="'g' has missing entries"):
        Panel.from_frame(df, unit="u", values="y", group="g")


def test_errors_about_a_mapped_column_name_the_files_column():
    frame = pd.DataFrame({"id": [1, 1, 2], "Conc": [1.0, np.nan, 2.0]})
    with pytest.raises(DataError, match=r"Column 'Conc' \(the model's 'y'\) has 1 missing or infinite value"):
        Panel.from_frame(frame, unit="id", values={"y": "Conc"})


def test_unit_labels_in_messages_are_plain_numbers():
    frame = pd.DataFrame({"id": [0, 0, 1, 1], "y": [1.0, 2.0, np.nan, 1.0], "a": [1.0, 1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="first for unit 1; drop") as err:
        Panel.from_frame(frame, unit="id", values="y")
    assert "np." not in str(err.value)
    with pytest.raises(DataError, match="varies within unit 1; unit") as err:
        Panel.from_frame(frame.fillna(0.0), unit="id", values="y", unit_covariates=["a"])

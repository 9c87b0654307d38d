"""Model declarations: names, levels and validation."""

import math

import numpy as np
import pytest

from simfit.errors import ModelError
from simfit.model import Level, Model, Observations
from simfit.models.random_intercept import normal_noise
from simfit.params import Param
from simfit.population import latent_gaussian_draw


def test_model_repr_and_names(ri_model, tl_model):
    assert ri_model.param_names == ("mu", "tau", "sigma")
    assert tl_model.n_levels == 2 and [lv.name for lv in tl_model.levels] == ["unit", "group"]
    assert "unit(a) -> group(c)" in repr(tl_model)


def test_invalid_declarations():
    with pytest.raises(ModelError, match="declares no parameters"):
        Level("unit", (), latent_gaussian_draw)
    with pytest.raises(ModelError, match="not a valid name"):
        Level("unit", ("a b",), latent_gaussian_draw)
    with pytest.raises(ModelError, match="args must be finite"):
        Level("unit", ("a",), latent_gaussian_draw, args=(np.nan,))
    with pytest.raises(ModelError, match="at least one level"):
        Model((Param("mu"),), (), Observations(normal_noise))
    with pytest.raises(ModelError, match="Duplicate parameter"):
        Model((Param("mu"), Param("mu", (0, math.inf))), (Level("u", ("a",), latent_gaussian_draw),), Observations(normal_noise))
    with pytest.raises(ModelError, match="Level names"):
        lv = Level("u", ("a",), latent_gaussian_draw)
        Model((Param("mu"),), (lv, lv), Observations(normal_noise))

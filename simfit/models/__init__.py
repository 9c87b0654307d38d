"""Ready structural simulators.

Each module declares, next to its kernels, the model's parameters (``PARAMS``), a ``model()``
constructor, its recommended ``statistics()`` and, where trials carry covariates, a ``design()``::

    from simfit.models import random_intercept
    model = random_intercept.model()
    stats = random_intercept.statistics()
"""

from simfit.models import (
    ddm,
    dynamic_panel,
    gandk,
    growth,
    logistic_map,
    lognormal_exponential,
    meta_analysis,
    pk,
    random_intercept,
    three_level,
)

__all__ = ["random_intercept", "lognormal_exponential", "three_level", "ddm", "dynamic_panel", "gandk", "pk", "growth", "logistic_map", "meta_analysis", "BUILTIN"]

#: Built-in model modules by name (used by scenario files).
BUILTIN = {
    "random_intercept": random_intercept,
    "lognormal_exponential": lognormal_exponential,
    "three_level": three_level,
    "ddm": ddm,
    "dynamic_panel": dynamic_panel,
    "gandk": gandk,
    "pk": pk,
    "growth": growth,
    "logistic_map": logistic_map,
    "meta_analysis": meta_analysis,
}

"""Bayesian inference on the simulation engine: priors, samplers and posterior results.

``sample(model, data, statistics, prior, method="auto" | "bsl" | "abc-smc" | "surrogate")`` returns
a :class:`Posterior` of the population parameters, whose report puts posterior expectations beside
the mode and the extremum estimate. ``"auto"``, the default, keeps the surrogate sampler's
posterior where its own checks pass and falls back to BSL, saying why, where one fails.
"""

from simfit.bayes.abc_smc import ABCOptions
from simfit.bayes.posterior import Posterior
from simfit.bayes.priors import Priors, make_prior
from simfit.bayes.sampling import METHODS, AutoOptions, FallbackWarning, sample
from simfit.bayes.surrogate import SurrogateOptions, SurrogateWarning
from simfit.bayes.synthetic_likelihood import BSLOptions

__all__ = [
    "sample", "Posterior", "Priors", "make_prior", "BSLOptions", "ABCOptions", "SurrogateOptions", "AutoOptions", "METHODS",
    "FallbackWarning", "SurrogateWarning",
]

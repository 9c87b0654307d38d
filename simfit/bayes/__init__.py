"""Bayesian inference on the simulation engine: priors, samplers and posterior results.

``sample(model, data, statistics, prior, method="bsl" | "abc-smc")`` returns a
:class:`Posterior` of the population parameters, whose report puts posterior expectations beside
the mode and the extremum estimate.
"""

from simfit.bayes.abc_smc import ABCOptions
from simfit.bayes.posterior import Posterior
from simfit.bayes.priors import Priors, make_prior
from simfit.bayes.sampling import METHODS, sample
from simfit.bayes.synthetic_likelihood import BSLOptions

__all__ = ["sample", "Posterior", "Priors", "make_prior", "BSLOptions", "ABCOptions", "METHODS"]

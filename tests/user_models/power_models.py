"""Model specifications for the power tests of ``symicl verify`` (tests/test_verify_power.py).

Each module-level :class:`~symicl.spec.ModelSpec` pairs a theory (its
``build``: the model whose expected loss and flow symicl derives) with the
data (its ``simulator`` hook: the SGD that verify runs).  In the wrong specs
the two disagree by a few percent, so ``symicl verify
tests/user_models/power_models.py:NAME --quick`` must exit 1; the correct
specs are the same constructions with the two in agreement, and must exit 0.

The model is the one-layer linear transformer of
:func:`symicl.models.linear_transformer` at d = 1, aligned tasks and unit
input variance, written out here through the public API with one extra knob,
the weight k of the query token inside the moment matrix:

    Z Z^T / N  ->  mean_n(z_n z_n^T) + k z_q z_q^T / N,

so that E[(Z Z^T / N)_xx] = (N + k) / N.  k = 1 is the built-in model
(tested equal to it); k = 2 changes the coefficient (N + 1)/N to (N + 2)/N.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import sympy as sp

from symicl.context import Context
from symicl.expectation import Distribution
from symicl.gaussian import Gaussian
from symicl.model import Model
from symicl.simulate import GeneratedSGD
from symicl.spec import ModelSpec
from symicl.symbols import matrix, vector

N_VALUE = 16


def transformer(query_weight=1):
    """f(Z) = Z + W^P (mean(z z^T) + k z_q z_q^T / N) W^Q Z at d = 1, y = lambda x,
    lambda, x, u ~ N(0, 1); k = ``query_weight``, N symbolic.  Parameters WP_i_j, WQ_i_j."""
    u, xq, lam = vector("u", 1), vector("x", 1), vector("lambda", 1)
    context = Context(Gaussian(u, name="u"))
    z = sp.Matrix([u[0], lam[0] * u[0]])
    zq = sp.Matrix([xq[0], 0])
    WP, WQ = matrix("WP", 2, 2), matrix("WQ", 2, 2)
    moments = context.mean(z * z.T) + sp.nsimplify(query_weight) * zq * zq.T / context.N
    return Model(f"transformer-query-weight-{query_weight}", {"WP": WP, "WQ": WQ},
                 Distribution(Gaussian(lam, name="lambda"), Gaussian(xq, name="x"), context),
                 prediction=WP[1:, :] * (moments * (WQ * zq)),
                 target=sp.Matrix([lam[0] * xq[0]]))


class ScaledGradient:
    """A simulator whose gradient component ``index`` is multiplied by ``factor``
    (in minibatches and per example alike): a wrong backward pass."""

    def __init__(self, sim, index: int, factor: float):
        self.sim, self.index, self.factor = sim, index, factor
        self.parameters, self.batch = sim.parameters, sim.batch

    def _scaled(self, g):
        g = np.array(g, dtype=float)
        g[..., self.index] *= self.factor
        return g

    def minibatch(self, theta, rng):
        loss, g = self.sim.minibatch(theta, rng)
        return loss, self._scaled(g)

    def examples(self, theta, n, rng):
        loss, g = self.sim.examples(theta, n, rng)
        return loss, self._scaled(g)


def data(query_weight=1, scale_parameter=None, factor=1.0):
    """A ``simulator`` hook: SGD generated from ``transformer(query_weight)``, optionally
    with the gradient of ``scale_parameter`` multiplied by ``factor``."""
    def make(model, options, constants, batch):
        sim = GeneratedSGD(transformer(query_weight), constants, batch=batch)
        if scale_parameter is None:
            return sim
        return ScaledGradient(sim, sim.parameters.index(scale_parameter), factor)
    return make


def _start(*names):
    def start(model, options, scale, seed):
        order = [p.name for p in model.parameters]
        theta = np.zeros(len(order))
        theta[[order.index(n) for n in names]] = scale
        return theta
    return start


# The built-in transformer's start: (W^P)_yy = (W^Q)_xx = scale, every other entry 0.
# Deterministic, like the next one: the seed changes only the SGD noise.
aligned_start = _start("WP_2_2", "WQ_1_1")
# The aligned start with (W^P)_yx = scale too: the query's path
# (W^P)_yx (Z Z^T / N)_xx (W^Q)_xx x_q, where k enters, is live from the start.
query_path_start = _start("WP_2_1", "WP_2_2", "WQ_1_1")


def _spec(name, summary, theory, **hooks):
    return ModelSpec(name=name, build=partial(transformer, theory), summary=summary,
                     constants=lambda options: {"N": N_VALUE}, **hooks)


# (a) the theory's coefficient (N + 1)/N perturbed to (N + 2)/N; the data are the true model
QUERY_WEIGHT_WRONG = _spec(
    "query-weight-wrong", "theory k = 2, data k = 1: E[Z Z^T / N]_xx = (N+2)/N vs (N+1)/N", 2,
    simulator=data(1), init=query_path_start)
# its correct version: theory and data both k = 1, same hooks
QUERY_WEIGHT_RIGHT = _spec(
    "query-weight-right", "theory k = 1, data k = 1", 1, simulator=data(1),
    init=query_path_start)

# (b) the simulator's gradient of (W^P)_yy multiplied by 1.05, from the aligned start
GRADIENT_WRONG = _spec(
    "gradient-wrong", "SGD with dL/dWP_2_2 multiplied by 1.05", 1,
    simulator=data(1, "WP_2_2", 1.05), init=aligned_start)
# its correct version: the same wrapper with the factor 1
GRADIENT_RIGHT = _spec(
    "gradient-right", "SGD through the same wrapper, factor 1", 1,
    simulator=data(1, "WP_2_2", 1.0), init=aligned_start)

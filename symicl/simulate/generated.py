"""Monte Carlo SGD generated from a model's definition.

Any :class:`~symicl.model.Model` with a data law gets a simulator: its
random symbols are drawn by :class:`~symicl.simulate.sampler.DataSampler`
at numeric constants, and the per-example loss and gradient come from
generated code (:mod:`symicl.codegen.example`), so nothing is written by
hand.  It satisfies the :class:`~symicl.simulate.sgd.Simulator` interface.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..codegen.example import example_kernels
from ..errors import ModelError, SymiclError
from ..model import Model
from .sampler import DataSampler

__all__ = ["GeneratedSGD"]


class GeneratedSGD:
    """Per-example and minibatch gradients of ``model`` on fresh draws of its data.

    ``constants`` gives every constant of the model a number (context
    lengths included); ``backend`` is "numba" (default) or "numpy".
    """

    def __init__(self, model: Model, constants: Mapping[str, float], batch: int = 32,
                 backend: str = "numba"):
        if model.prediction is None and not model.distribution.groups:
            raise ModelError(f"model {model.name} is given by its expected loss alone: it has "
                             "no data to draw, so it cannot be simulated")
        if int(batch) != batch or batch < 1:
            raise SymiclError(f"batch must be a positive integer, got {batch}")
        randoms = [r for r in model.distribution.random_symbols() if r in model.loss.free_symbols]
        self.model, self.batch, self.backend = model, int(batch), backend
        self.parameters = tuple(p.name for p in model.parameters)
        self.kernels = example_kernels(model, randoms, backend)
        self.c = np.array([float(constants[c]) for c in self.kernels.constants], dtype=float) \
            if all(c in constants for c in self.kernels.constants) else None
        if self.c is None:
            missing = [c for c in self.kernels.constants if c not in constants]
            raise SymiclError(f"no value for the constant {', '.join(missing)}")
        self.sampler = DataSampler(model.distribution, randoms, constants)

    def minibatch(self, theta: np.ndarray, rng: np.random.Generator):
        """Mean loss (S,) and gradient (S, P) over one fresh batch per row of theta (S, P)."""
        XI = self.sampler.draw(rng, (theta.shape[0], self.batch))
        return self.kernels.minibatch(theta, XI, self.c)

    def examples(self, theta: np.ndarray, n: int, rng: np.random.Generator):
        """Per-example loss (n,) and gradient (n, P) at one theta (P,)."""
        XI = self.sampler.draw(rng, (n,))
        return self.kernels.examples(np.asarray(theta, dtype=float), XI, self.c)

"""Numerics: integration of derived flows and Monte Carlo SGD on the real models.

SGD runs on fresh draws of a model's data: :class:`GeneratedSGD` for any
model (data sampled from its distribution, per-example gradients generated
from its loss), and the built-ins' hand-written fast paths
(:class:`TransformerSGD`, :class:`DeepLinearSGD`), which compute gradients
from the forward pass by hand and are tested equal in distribution to the
generated ones; both serve :func:`run_sgd` through the :class:`Simulator`
interface.
"""

from .ode import Trajectory, integrate
from .generated import GeneratedSGD
from .sampler import DataSampler
from .sgd import DivergenceError, Guard, SGDRun, Simulator, ThetaRun, run_sgd
from .sgd_deep_linear import DeepLinearSGD
from .sgd_transformer import TransformerSGD

__all__ = ["Trajectory", "integrate", "SGDRun", "DivergenceError", "TransformerSGD",
           "DeepLinearSGD", "GeneratedSGD", "DataSampler", "Guard", "Simulator", "ThetaRun",
           "run_sgd"]

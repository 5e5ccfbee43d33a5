"""Numerics: integration of derived flows and Monte Carlo SGD on the real models.

The SGD simulators compute their stochastic gradients directly from the
forward pass (written here by hand, not generated from the symbolic
expressions), so that comparing them with the derived flow is a real check.
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

"""Loaded kernels of one model: loss, flow and Jacobian as fast functions."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Mapping

import numpy as np

from ..errors import SymiclError
import sympy as sp

from ..algebra import expr_from_terms
from ..model import Model
from .cache import kernel_key, load_or_write
from .source import GENERATOR_VERSION, module_source, renamed_symbols
from .table import TABLE_TERMS, table_module

__all__ = ["Kernels", "kernels"]

BACKENDS = ("numpy", "numba", "table")


class Kernels:
    """Generated loss L(theta), flow F(theta) = -grad L and Jacobian dF/dtheta.

    ``theta`` follows ``parameters``; ``c`` holds the numeric constants in the
    order of ``constants`` (see :meth:`constants_vector`).  The NumPy back end
    also accepts ``theta`` of shape (P, batch).
    """

    def __init__(self, module: ModuleType, path: Path, backend: str, generated: bool):
        self.module, self.path, self.backend, self.generated = module, path, backend, generated
        self.parameters: tuple[str, ...] = module.PARAMETERS
        self.constants: tuple[str, ...] = module.CONSTANTS

    def constants_vector(self, values: Mapping[str, float]) -> np.ndarray:
        """The constants as the float vector ``c`` the kernels take."""
        missing = [c for c in self.constants if c not in values]
        if missing:
            raise SymiclError(f"values missing for constants {', '.join(missing)}")
        extra = sorted(set(values) - set(self.constants))
        if extra:
            raise SymiclError(f"unknown constants {', '.join(extra)}; the kernels take "
                              f"{', '.join(self.constants) or 'none'}")
        c = np.array([float(values[k]) for k in self.constants], dtype=float)
        if not np.all(np.isfinite(c)):
            raise SymiclError("constants must be finite numbers")
        return c

    def _theta(self, theta) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        if theta.shape[:1] != (len(self.parameters),):
            raise SymiclError(f"theta has leading size {theta.shape[:1]}, expected "
                              f"{len(self.parameters)} parameters")
        return theta

    def loss(self, theta, c):
        return self.module.loss(self._theta(theta), c)

    def flow(self, theta, c, out=None):
        theta = self._theta(theta)
        return self.module.flow(theta, c, np.empty_like(theta) if out is None else out)

    def jacobian(self, theta, c, out=None):
        theta = self._theta(theta)
        if out is None:
            out = np.empty((theta.shape[0],) + theta.shape)
        return self.module.jacobian(theta, c, out)


def kernels(model: Model, backend: str = "numba") -> Kernels:
    """Generate (or load from the cache) the kernels of ``model``.

    ``numpy`` and ``numba`` print the loss, flow and Jacobian as source (beyond
    20,000 loss terms both walk the loss's monomial table instead, see
    :mod:`.table`); ``table`` always walks the table: nothing to print or
    compile per model, for many short-lived models."""
    if backend not in BACKENDS:
        raise SymiclError(f"unknown back end {backend!r}; choose one of {', '.join(BACKENDS)}")
    made = model.__dict__.setdefault("_symicl_kernels", {})    # one module per model object
    if backend in made:
        module, path = made[backend]
        return Kernels(module, path, backend, generated=False)
    k = _kernels(model, backend)
    made[backend] = (k.module, k.path)
    return k


def _old_path() -> bool:
    """The expression-level path (generator 1), kept only for the benchmark."""
    return os.environ.get("SYMICL_ANALYSIS_PATH", "") == "old"


def _kernels(model: Model, backend: str) -> Kernels:
    plan = None if _old_path() else _ring_plan(model)
    if plan is None:
        if backend == "table":
            raise SymiclError(f"the table back end needs the engine's ring form of the loss, "
                              f"which {model.name} does not have; use numpy or numba")
        return _kernels_expr(model, backend)
    params, consts = model.parameters, model.constants
    engine = model._engine
    gens, negative, symbols, neg = plan
    expected = model._expected
    if len(expected) > TABLE_TERMS or backend == "table":
        # printing and cse would not finish: evaluate the terms themselves
        return Kernels(table_module(model, gens, negative), None, backend, generated=True)
    # The key hashes the expected loss's terms in the coefficient ring (loss,
    # flow and Jacobian all follow from them), not the printed expressions.
    terms = sorted(expected.items())
    key = kernel_key(GENERATOR_VERSION, backend, model.name, repr(sorted(model.options.items())),
                     ",".join(p.name for p in params), ",".join(c.name for c in consts),
                     "ring:" + ",".join(str(g) for g in gens),
                     repr(sorted((i, n.name) for i, n in negative.items())),
                     ";".join(f"{m}:{c}" for m, c in terms))

    def make():
        ring = engine.coefficients

        def expr(poly):
            return expr_from_terms(dict(poly.items()), symbols, neg)

        grads = [model._gradient[p] for p in params]
        pgens = [ring.ring.gens[ring.index[p]] for p in params]
        loss = expr(expected)
        flow = [expr(-g) for g in grads]
        jac = sp.Matrix(len(params), len(params),
                        lambda i, j: expr(-grads[i].diff(pgens[j])))
        return module_source(model.name, model.options, params, consts, loss, flow, jac, backend,
                             renamed=True)

    module, path, generated = load_or_write(key, make)
    return Kernels(module, path, backend, generated)


def _ring_plan(model: Model):
    """The ring generators written as th_i / c_i, or None where only the expression
    path applies (placeholders other than 1/N, generators that are neither)."""
    engine = model._engine
    plan = engine._expr_plan
    if plan is None or not engine.coefficients.gens:
        return None
    gens, negative = plan
    names = renamed_symbols(model.parameters, model.constants)
    if any(g not in names for i, g in enumerate(gens) if i not in negative) \
            or any(n not in names for n in negative.values()):
        return None
    symbols = [names.get(g, g) for g in gens]
    return gens, negative, symbols, {i: names[n] for i, n in negative.items()}


def _kernels_expr(model: Model, backend: str) -> Kernels:
    """Generator 1's path: key from the printed loss and flow, renaming by xreplace."""
    params, consts = model.parameters, model.constants
    loss, flow = model.expected_loss(), model.flow()
    legacy = _old_path()
    key = kernel_key(GENERATOR_VERSION + ("-legacy" if legacy else ""), backend, model.name,
                     repr(sorted(model.options.items())),
                     ",".join(p.name for p in params), ",".join(c.name for c in consts),
                     str(loss), *(str(flow[p]) for p in params))
    module, path, generated = load_or_write(key, lambda: module_source(
        model.name, model.options, params, consts, loss, [flow[p] for p in params],
        model.jacobian(), backend, legacy=legacy))
    return Kernels(module, path, backend, generated)

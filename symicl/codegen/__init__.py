"""Code generation: fast NumPy and Numba kernels from a derived model.

    >>> from symicl.codegen import kernels
    >>> k = kernels(model, backend="numba")
    >>> k.flow(theta, k.constants_vector({"N": 8, "s_1": 2.0}))

Generated modules are readable Python files in the kernel cache (see
:mod:`symicl.codegen.cache`), reused while the expressions are unchanged.
"""

from .kernels import Kernels, kernels

__all__ = ["Kernels", "kernels"]

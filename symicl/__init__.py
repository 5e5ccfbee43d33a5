"""symicl: exact learning dynamics of small learning models.

Data flows one way: model definition -> expectation -> flow -> analysis ->
codegen -> numerics -> export.
"""

from .cache_paths import configure_numba as _configure_numba

__version__ = "0.1.0"

_configure_numba()  # before any symicl module imports Numba: its cache goes to the user cache

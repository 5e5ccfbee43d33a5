"""symicl: exact learning dynamics of small learning models.

Data flows one way: model definition -> expectation -> flow -> analysis ->
codegen -> numerics -> export.
"""

__version__ = "0.1.0"

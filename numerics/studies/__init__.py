"""Non-linear studies: ICL emergence in attention-only transformers and grokking.

Run one with ``python -m numerics.studies.icl_emergence --config quick --out DIR``
or ``python -m numerics.studies.grokking --config quick --out DIR``; see README.md.
"""

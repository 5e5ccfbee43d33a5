"""Analysis of a derived flow: fixed points, stability, timescales,
conservation laws and closed-form solutions.

Each module takes a :class:`symicl.model.Model` (its expected loss and flow)
and computes from it; nothing here is typed from the literature.
"""

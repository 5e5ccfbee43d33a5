"""Measures on the linear transformer's own theory: staged learning by mode.

Along the integrated exact flow of the aligned reduction from a small
balanced start, the effective rank of p2 = diag(p) and q1 = diag(q) steps
up one mode at a time, in the order of the input spectrum.
"""

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from symicl.measures import effective_rank
from symicl.models import build


def test_effective_rank_steps_up_mode_by_mode_in_spectrum_order():
    spectrum = [4.0, 2.0, 1.0]
    m = build("linear-transformer", dim=3, reduction="aligned", N=64, spectrum=spectrum)
    flow = m.flow()
    f = sp.lambdify([m.parameters], [flow[p] for p in m.parameters], "numpy")
    theta0 = np.full(len(m.parameters), 1e-4)
    t_end = 12.0
    ts = np.linspace(0, t_end, 1201)
    sol = solve_ivp(lambda t, y: f(y), (0, t_end), theta0, t_eval=ts, rtol=1e-10, atol=1e-14)
    assert sol.success
    p, q = sol.y[:3].T, sol.y[3:].T
    gains = p * q
    # time at which each mode reaches half of its final gain: ordered by s_a
    half = [ts[np.argmax(gains[:, a] >= gains[-1, a] / 2)] for a in range(3)]
    assert half[0] < half[1] < half[2]
    erank_p = effective_rank(np.stack([np.diag(row) for row in p]))
    erank_q = effective_rank(np.stack([np.diag(row) for row in q]))
    # plateaus between the mode transitions sit near 1, 2 and 3
    # (the small start gives erank 3 at t = 0: all modes equal and tiny)
    for k, (lo, hi) in enumerate([(half[0], half[1]), (half[1], half[2])], start=1):
        mid = np.searchsorted(ts, (lo + hi) / 2)
        assert abs(erank_p[mid] - k) < 0.5, (k, erank_p[mid])
        assert abs(erank_q[mid] - k) < 0.5, (k, erank_q[mid])
    assert abs(erank_p[-1] - 3) < 0.5
    # between the first transition and the end, the rank only grows
    i0 = np.searchsorted(ts, half[0])
    assert np.all(np.diff(erank_p[i0:]) > -1e-3)

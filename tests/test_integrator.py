"""The compiled DOP853 (method="numba-dop853") against scipy's DOP853.

Same tableau, controller and dense output as scipy, so the trajectories
agree to round-off: asserted to 1e-10 relative (to the trajectory's scale)
on the full transformer (d = 2) and the deep linear network flows, at
requested times and at every step.  A stiff flow stops with a SymiclError
naming stiffness and the implicit methods, under a step or time budget.
Fixed seeds; no timing assertions.
"""

import numpy as np
import pytest

from symicl.errors import SymiclError
from symicl.models import build
from symicl.simulate import integrate
from symicl.simulate.integrator import StiffnessError

CASES = [
    ("linear-transformer", {"dim": 2, "reduction": "none"}, {"N": 8, "s_1": 2.0, "s_2": 0.5},
     0.3, 10.0),
    ("deep-linear", {"n_in": 2, "n_hidden": 2, "n_out": 2},
     {"T_1_1": 3.0, "T_1_2": 0.5, "T_2_1": -0.25, "T_2_2": 1.0}, 0.1, 8.0),
]


@pytest.mark.parametrize("name, options, constants, scale, t_end", CASES)
def test_matches_scipy_dop853(name, options, constants, scale, t_end):
    model = build(name, **options)
    rng = np.random.default_rng(20261203)
    theta0 = rng.normal(scale=scale, size=len(model.parameters))
    t_eval = np.linspace(0.0, t_end, 41)
    ref = integrate(model, theta0, t_end, constants, t_eval=t_eval, method="DOP853")
    fast = integrate(model, theta0, t_end, constants, t_eval=t_eval, method="numba-dop853")
    assert np.array_equal(fast.t, ref.t)
    # the flow moves the weights well away from the start: a non-trivial check
    assert np.max(np.abs(ref.theta[-1] - ref.theta[0])) > 0.1
    err = np.max(np.abs(fast.theta - ref.theta)) / np.max(np.abs(ref.theta))
    assert err < 1e-10
    assert np.max(np.abs(fast.loss - ref.loss)) <= 1e-10 * np.max(np.abs(ref.loss))
    # without t_eval: every accepted step, the same steps as scipy
    ref_steps = integrate(model, theta0, t_end, constants, method="DOP853")
    fast_steps = integrate(model, theta0, t_end, constants, method="numba-dop853")
    assert len(fast_steps.t) == len(ref_steps.t)
    assert np.allclose(fast_steps.t, ref_steps.t, rtol=1e-6, atol=0)
    assert fast_steps.t[0] == 0.0 and fast_steps.t[-1] == t_end
    assert np.allclose(fast_steps.theta[-1], ref.theta[-1], rtol=0,
                       atol=1e-10 * np.max(np.abs(ref.theta)))


def test_wrong_flow_would_be_caught():
    """The comparison has teeth: a 1e-6 change of one constant moves the end point by
    more than ten times the 1e-10 tolerance used above."""
    model = build("deep-linear", n_in=2, n_hidden=2, n_out=2)
    theta0 = np.full(len(model.parameters), 0.1)
    c = {"T_1_1": 3.0, "T_1_2": 0.0, "T_2_1": 0.0, "T_2_2": 1.0}
    a = integrate(model, theta0, 4.0, c, t_eval=[4.0], method="numba-dop853")
    b = integrate(model, theta0, 4.0, dict(c, T_2_2=1.0 + 1e-6), t_eval=[4.0],
                  method="numba-dop853")
    assert np.max(np.abs(a.theta - b.theta)) > 10 * 1e-10 * np.max(np.abs(a.theta))


STIFF = ({"dim": 2, "reduction": "aligned"}, {"N": 8, "s_1": 1e6, "s_2": 1.0})


def test_stiff_flow_stops_with_a_clear_error():
    options, constants = STIFF
    model = build("linear-transformer", **options)
    theta0 = np.full(len(model.parameters), 0.1)
    with pytest.raises(StiffnessError, match="stiff") as info:
        integrate(model, theta0, 10.0, constants, method="numba-dop853", max_steps=3000)
    assert "LSODA" in str(info.value) and "Radau" in str(info.value)
    assert "max_steps = 3000" in str(info.value)
    assert isinstance(info.value, SymiclError)
    with pytest.raises(StiffnessError, match="time_limit"):
        integrate(model, theta0, 10.0, constants, method="numba-dop853", max_steps=10**9,
                  time_limit=0.2)
    with pytest.raises(StiffnessError, match="LSODA"):
        integrate(model, theta0, 10.0, constants, method="DOP853", time_limit=0.2)


def test_option_errors():
    model = build("deep-linear", n_in=1, n_hidden=1, n_out=1)
    c = {name.name: 1.0 for name in model.constants}
    with pytest.raises(SymiclError, match="max_steps applies"):
        integrate(model, [0.1, 0.1], 1.0, c, method="LSODA", max_steps=10)
    with pytest.raises(SymiclError, match="backend='numba'"):
        integrate(model, [0.1, 0.1], 1.0, c, method="numba-dop853", backend="numpy")
    with pytest.raises(SymiclError, match="time_limit"):
        integrate(model, [0.1, 0.1], 1.0, c, method="numba-dop853", time_limit=0)
    with pytest.raises(SymiclError, match="t_eval"):
        integrate(model, [0.1, 0.1], 1.0, c, method="numba-dop853", t_eval=[0.5, 2.0])


def test_counts_and_replay():
    """nfev = 2 + 12 per attempted step + 3 per dense step, and the benchmark's replay of
    those counts (the integrator's own arithmetic) runs with any compiled flow."""
    from symicl.codegen import kernels
    from symicl.simulate import integrator

    model = build("deep-linear", n_in=2, n_hidden=2, n_out=2)
    k = kernels(model, "numba")
    c = k.constants_vector({"T_1_1": 3.0, "T_1_2": 0.5, "T_2_1": -0.25, "T_2_2": 1.0})
    theta0 = np.full(len(model.parameters), 0.1)
    res = integrator.dop853(k.module.flow, c, theta0, 8.0, t_eval=np.linspace(0.0, 8.0, 9))
    assert 0 < res.dense <= 8
    assert res.nfev == 2 + 12 * (res.steps + res.rejected) + 3 * res.dense
    ca, ja = integrator._addresses(k.module.flow)
    total = integrator._replay(ca, ja, c, theta0, 0.01, res.steps + res.rejected, res.dense, 8)
    assert np.isfinite(total)
    with pytest.raises(SymiclError, match="increasing"):
        integrator.dop853(k.module.flow, c, theta0, 8.0, t_eval=[0.0, 2.0, 1.0])

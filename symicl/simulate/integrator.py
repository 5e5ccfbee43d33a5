"""A compiled Dormand-Prince 8(5,3) integrator (DOP853) for generated Numba flows.

``scipy.integrate.solve_ivp`` spends about 10 us of Python per step around a
generated flow that costs about 1 us; this module runs the whole loop in
Numba instead.  The method is scipy's DOP853, step for step: the same
Butcher tableau (``scipy.integrate._ivp.dop853_coefficients``), the same
error norm, step-size controller (safety 0.9, factors 0.2 .. 10, exponent
-1/8), initial step (Hairer, Norsett & Wanner II.4) and 7th-order dense
output for the requested times, so its trajectories agree with scipy's to
round-off (tested to 1e-10 relative).

The weighted sums of stages are compiled with the tableau's non-zero
coefficients folded in (:func:`_sparse`), the requested times are checked
inside the compiled call, and the interpolant is built only for steps with
requested times in them.  What is left above the flow evaluations is the
method's own arithmetic (about 50 stage coefficients per step), one call of
the flow through a pointer per evaluation, and about 5 us per call;
:func:`_replay` repeats that arithmetic with any flow, so a benchmark can
measure it with a flow that costs nothing.

The loop runs in chunks of steps; between chunks Python checks the caller's
step and wall-time budget, so a stiff flow (where an explicit method is held
to steps of about 3/|lambda_max|) stops with a clear error instead of
running for hours.
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np
from llvmlite import ir
from numba import literal_unroll, types
from numba.core import cgutils
from numba.extending import intrinsic
from scipy.integrate._ivp import dop853_coefficients as _dop

from ..errors import StiffnessError, SymiclError

__all__ = ["dop853", "DOP853Result", "StiffnessError"]

_N_STAGES = _dop.N_STAGES                      # 12
_N_EXT = _dop.N_STAGES_EXTENDED                # 16
_A = np.ascontiguousarray(_dop.A, dtype=np.float64)          # (16, 16): stages and extras
_B = np.ascontiguousarray(_dop.B, dtype=np.float64)
_C = np.ascontiguousarray(_dop.C, dtype=np.float64)
_E3 = np.ascontiguousarray(_dop.E3, dtype=np.float64)
_E5 = np.ascontiguousarray(_dop.E5, dtype=np.float64)
_D = np.ascontiguousarray(_dop.D, dtype=np.float64)          # (4, 16)
_POWER = _dop.INTERPOLATOR_POWER                # 7


def _sparse(row, upto: int) -> tuple:
    """(column indices, values) of the non-zero entries of row[:upto], as tuples: Numba
    compiles tuples held in globals as constants, so each weighted sum of stages below
    becomes straight-line code with its coefficients folded in (about 4x faster than a
    loop over the dense tableau at 8 parameters)."""
    cols = tuple(j for j in range(upto) if row[j] != 0.0)
    return cols, tuple(float(row[j]) for j in cols)


# (stage, columns, coefficients) of  K[s] = F(y + h sum_j A[s, j] K[j])
_STAGES = tuple((s,) + _sparse(_A[s], s) for s in range(1, _N_STAGES))
_EXTRA = tuple((s,) + _sparse(_A[s], s) for s in range(_N_STAGES + 1, _N_EXT))
_BJ, _BV = _sparse(_B, _N_STAGES)
_E5J, _E5V = _sparse(_E5, _N_STAGES + 1)
_E3J, _E3V = _sparse(_E3, _N_STAGES + 1)
_DROWS = tuple((r,) + _sparse(_D[r], _N_EXT) for r in range(_POWER - 3))

SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0
_EXPONENT = -1.0 / 8.0                          # -1 / (error estimator order 7 + 1)

# status codes of the compiled loop
_DONE, _CHUNK, _TOO_SMALL, _NOT_FINITE, _BAD_TIMES = 0, 1, 2, 3, 4


# The flow enters the compiled loop as a first-class function (a pointer), so
# the loop compiles once, is cached on disk, and serves every generated flow.
_ARR = types.float64[::1]
_MAT = types.float64[:, ::1]
_FLOW = types.FunctionType(_ARR(_ARR, _ARR, _ARR))
_NO_STEPS = np.empty(0)


class DOP853Result:
    """t, y (len(t), n), accepted steps, rejected steps, flow evaluations and dense steps
    (steps that interpolated requested times; 3 more evaluations each)."""

    def __init__(self, t, y, steps, rejected, nfev, dense=0):
        self.t, self.y, self.steps, self.rejected, self.nfev = t, y, steps, rejected, nfev
        self.dense = dense


@numba.njit(types.float64(_FLOW, _ARR, types.float64, _ARR, _ARR, types.float64, types.float64,
                          types.float64, _ARR), cache=True)
def _initial_step(flow, c, t0, y0, f0, t_bound, rtol, atol, work):
    """scipy's select_initial_step for order 7 (max_step = inf)."""
    n = y0.size
    interval = abs(t_bound - t0)
    if interval == 0.0:
        return 0.0
    d0 = 0.0
    d1 = 0.0
    for i in range(n):
        sc = atol + abs(y0[i]) * rtol
        d0 += (y0[i] / sc) ** 2
        d1 += (f0[i] / sc) ** 2
    d0 = math.sqrt(d0 / n)
    d1 = math.sqrt(d1 / n)
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = 1e-6
    else:
        h0 = 0.01 * d0 / d1
    h0 = min(h0, interval)
    y1 = np.empty(n)
    for i in range(n):
        y1[i] = y0[i] + h0 * f0[i]
    flow(y1, c, work)
    d2 = 0.0
    for i in range(n):
        sc = atol + abs(y0[i]) * rtol
        d2 += ((work[i] - f0[i]) / sc) ** 2
    d2 = math.sqrt(d2 / n) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / 8.0)
    return min(100 * h0, h1, interval)


@intrinsic
def _as_flow(typingctx, c_addr, jit_addr):
    """The generated flow as a first-class function, from its two compiled addresses.

    Passing the Numba dispatcher itself costs about 40 us per call (its
    addresses are looked up in Python at every unboxing), more than a whole
    integration of a small flow; the addresses are looked up once instead
    (:func:`_addresses`) and travel as integers.
    """
    def codegen(context, builder, signature, args):
        fn = cgutils.create_struct_proxy(_FLOW)(context, builder)
        voidptr = context.get_value_type(types.voidptr)
        fn.c_addr = builder.inttoptr(args[0], voidptr)
        fn.py_addr = ir.Constant(voidptr, None)
        fn.jit_addr = builder.inttoptr(args[1], voidptr)
        return fn._getvalue()
    return _FLOW(types.intp, types.intp), codegen


_ADDRESSES: dict[int, tuple] = {}


def _addresses(flow) -> tuple[int, int]:
    """(C wrapper, Numba entry point) addresses of a compiled flow, looked up once per flow.

    The flow is kept referenced here, so its code stays loaded while the
    addresses are in use.
    """
    hit = _ADDRESSES.get(id(flow))
    if hit is None or hit[0] is not flow:
        if not isinstance(flow, numba.core.registry.CPUDispatcher):
            raise SymiclError(f"numba-dop853 integrates a Numba-compiled flow(theta, c, out); "
                              f"got {type(flow).__name__}")
        cres = flow.get_compile_result(_FLOW.signature)
        hit = (flow, cres.library.get_pointer_to_function(cres.fndesc.llvm_cfunc_wrapper_name),
               cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name))
        _ADDRESSES[id(flow)] = hit
    return hit[1], hit[2]


@numba.njit
def _stages(flow, c, y, K, h, ytmp):
    """K[s] = F(y + h sum_j A[s, j] K[j]) for the stages s = 1 .. 11, in turn."""
    n = y.size
    for st in literal_unroll(_STAGES):
        s, cols, coef = st
        for i in range(n):
            v = 0.0
            for p in range(len(cols)):
                v += coef[p] * K[cols[p], i]
            ytmp[i] = y[i] + v * h
        flow(ytmp, c, K[s])


@numba.njit
def _extra_stages(flow, c, y, K, h, ytmp):
    """The same for the interpolant's stages s = 13 .. 15."""
    n = y.size
    for st in literal_unroll(_EXTRA):
        s, cols, coef = st
        for i in range(n):
            v = 0.0
            for p in range(len(cols)):
                v += coef[p] * K[cols[p], i]
            ytmp[i] = y[i] + v * h
        flow(ytmp, c, K[s])


@numba.njit
def _attempt(flow, c, y, f, h, K, ytmp, y_new, rtol, atol):
    """One DOP853 step of size h from (y, f = F(y)): the 12 stages, y_new, F(y_new) in
    K[12], and scipy's error norm (3rd- and 5th-order estimates); returns (err, finite)."""
    n = y.size
    for i in range(n):
        K[0, i] = f[i]
    _stages(flow, c, y, K, h, ytmp)
    for i in range(n):
        v = 0.0
        for p in range(len(_BJ)):
            v += _BV[p] * K[_BJ[p], i]
        y_new[i] = y[i] + h * v
    flow(y_new, c, K[_N_STAGES])
    e5 = 0.0
    e3 = 0.0
    finite = True
    for i in range(n):
        v5 = 0.0
        for p in range(len(_E5J)):
            v5 += _E5V[p] * K[_E5J[p], i]
        v3 = 0.0
        for p in range(len(_E3J)):
            v3 += _E3V[p] * K[_E3J[p], i]
        w = 1.0 / (atol + max(abs(y[i]), abs(y_new[i])) * rtol)
        a5 = v5 * w
        a3 = v3 * w
        e5 += a5 * a5
        e3 += a3 * a3
        if not np.isfinite(y_new[i]):
            finite = False
    if e5 == 0.0 and e3 == 0.0:
        return 0.0, finite
    return abs(h) * e5 / math.sqrt((e5 + 0.01 * e3) * n), finite


@numba.njit
def _dense(flow, c, y, y_new, h, K, ytmp, F):
    """The 7th-order interpolant of the step (three more stages): F[0 .. 6]."""
    n = y.size
    _extra_stages(flow, c, y, K, h, ytmp)
    for i in range(n):
        dy = y_new[i] - y[i]
        F[0, i] = dy
        F[1, i] = h * K[0, i] - dy
        F[2, i] = 2.0 * dy - h * (K[_N_STAGES, i] + K[0, i])
    for row in literal_unroll(_DROWS):
        r, cols, coef = row
        for i in range(n):
            v = 0.0
            for p in range(len(cols)):
                v += coef[p] * K[cols[p], i]
            F[3 + r, i] = h * v


@numba.njit
def _interpolate(F, y, x, out):
    """out = y + the interpolant at x = (t - t_old) / h in [0, 1]."""
    for i in range(y.size):
        v = 0.0
        for q in range(_POWER):
            v += F[_POWER - 1 - q, i]
            if q % 2 == 0:
                v *= x
            else:
                v *= 1.0 - x
        out[i] = v + y[i]


@numba.njit(types.int64(types.intp, types.intp, _ARR, _ARR, _MAT, types.float64,
                        types.float64, types.float64, _ARR, _MAT, _ARR, _MAT, types.int64),
            cache=True)
def _run(c_addr, jit_addr, c, state, yf, t_bound, rtol, atol, t_eval, ev_out, step_t, step_y,
         chunk):
    """Advance up to ``chunk`` accepted steps (the first call also takes the initial step).

    state = [t, h_abs (< 0: not started), t_eval index, steps, rejected, nfev,
             n recorded this call, h of the last attempt, dense steps]; yf = [y, F(y)]
    is updated in place.  Without t_eval (t_eval.size == 0) every accepted step
    is written to step_t / step_y.
    """
    flow = _as_flow(c_addr, jit_addr)
    y = yf[0]
    f = yf[1]
    n = y.size
    K = np.empty((_N_EXT, n))
    y_new = np.empty(n)
    ytmp = np.empty(n)
    F = np.empty((_POWER, n))
    use_eval = t_eval.size > 0
    if state[1] < 0.0:
        if use_eval:
            # the requested times are checked here, not in Python (a few us per call there)
            if t_eval[0] < 0.0 or t_eval[-1] > t_bound:
                return _BAD_TIMES
            for k in range(1, t_eval.size):
                if t_eval[k] < t_eval[k - 1]:
                    return _BAD_TIMES
            # times at t = 0 are the initial state (scipy's dense output gives exactly y0)
            k = 0
            while k < t_eval.size and t_eval[k] <= 0.0:
                ev_out[k] = y
                k += 1
            state[2] = k
        flow(y, c, f)
        state[1] = _initial_step(flow, c, 0.0, y, f, t_bound, rtol, atol, ytmp)
        state[5] = 2
    t = state[0]
    h_abs = state[1]
    ev_i = int(state[2])
    recorded = 0
    for _ in range(chunk):
        if t >= t_bound:
            break
        min_step = 10.0 * abs(np.nextafter(t, np.inf) - t)
        if h_abs < min_step:
            h_abs = min_step
        accepted = False
        rejected = False
        h = 0.0
        while not accepted:
            if h_abs < min_step:
                state[0] = t
                state[1] = h_abs
                state[7] = h_abs
                return _TOO_SMALL
            t_new = t + h_abs
            if t_new - t_bound > 0:
                t_new = t_bound
            h = t_new - t
            h_abs = abs(h)
            err, finite = _attempt(flow, c, y, f, h, K, ytmp, y_new, rtol, atol)
            state[5] += _N_STAGES
            if not finite and not (err >= 1.0):
                state[0] = t
                state[1] = h_abs
                return _NOT_FINITE
            if err < 1.0:
                if err == 0.0:
                    factor = MAX_FACTOR
                else:
                    factor = min(MAX_FACTOR, SAFETY * err ** _EXPONENT)
                if rejected:
                    factor = min(1.0, factor)
                h_abs *= factor
                accepted = True
            else:
                if err != err:  # NaN error: shrink as far as allowed
                    h_abs *= MIN_FACTOR
                else:
                    h_abs *= max(MIN_FACTOR, SAFETY * err ** _EXPONENT)
                rejected = True
                state[4] += 1
        state[3] += 1
        # dense output only for a step with requested times in (t, t_new]
        if use_eval:
            ev_j = ev_i
            while ev_j < t_eval.size and t_eval[ev_j] <= t_new:
                ev_j += 1
            if ev_j > ev_i:
                _dense(flow, c, y, y_new, h, K, ytmp, F)
                state[5] += _N_EXT - _N_STAGES - 1
                state[8] += 1
                for k in range(ev_i, ev_j):
                    _interpolate(F, y, (t_eval[k] - t) / h, ev_out[k])
                ev_i = ev_j
        elif step_t.size:
            step_t[recorded] = t_new
            for i in range(n):
                step_y[recorded, i] = y_new[i]
            recorded += 1
        t = t_new
        for i in range(n):
            y[i] = y_new[i]
            f[i] = K[_N_STAGES, i]
    state[0] = t
    state[1] = h_abs
    state[2] = ev_i
    state[6] = recorded
    return _DONE if t >= t_bound else _CHUNK


@numba.njit(cache=True)      # compiled on first use (by the benchmark), not at import
def _replay(c_addr, jit_addr, c, y0, h, attempts, dense, outputs):
    """The compiled loop's arithmetic without its decisions: ``attempts`` steps of size
    h, ``dense`` interpolants and ``outputs`` interpolated points, with the flow given.
    With a flow that costs nothing this is the integrator's own floor for a run with
    those counts (used by the benchmark)."""
    flow = _as_flow(c_addr, jit_addr)
    n = y0.size
    y = y0.copy()
    f = np.zeros(n)
    K = np.zeros((_N_EXT, n))
    y_new = np.zeros(n)
    ytmp = np.zeros(n)
    F = np.zeros((_POWER, n))
    out = np.zeros(n)
    total = 0.0
    for a in range(attempts):
        err, finite = _attempt(flow, c, y, f, h, K, ytmp, y_new, 1e-10, 1e-12)
        total += err
        if a < dense:
            _dense(flow, c, y, y_new, h, K, ytmp, F)
            for k in range(outputs // dense + (1 if a < outputs % dense else 0)):
                _interpolate(F, y, 0.5, out)
                total += out[0]
    return total


def dop853(flow, c, y0, t_end: float, t_eval=None, rtol: float = 1e-10, atol: float = 1e-12,
           max_steps: int | None = 200_000, time_limit: float | None = None,
           chunk: int = 2000) -> DOP853Result:
    """Integrate dy/dt = flow(y, c) on [0, t_end] with a compiled DOP853.

    ``flow`` is a Numba-compiled ``flow(theta, c, out)`` returning ``out`` (a
    generated kernel); it is called through a function pointer, so this loop
    is compiled once and cached, whatever the flow.
    With ``t_eval`` the solution is returned at those times (dense output),
    else at every accepted step (and t = 0), like ``solve_ivp``.  Raises
    :class:`StiffnessError` when more than ``max_steps`` steps or
    ``time_limit`` seconds are needed, and SymiclError when the step size
    collapses or the solution stops being finite.
    """
    yf = np.empty((2, np.size(y0)))
    yf[0] = y0
    y = yf[0]
    c = np.ascontiguousarray(c, dtype=np.float64)
    n = y.size
    t_end = float(t_end)
    if t_eval is not None:
        t_eval = np.array(t_eval, dtype=np.float64)      # a copy: it is returned
        if t_eval.ndim != 1:
            raise SymiclError("t_eval must be one-dimensional")
        ev_out = np.empty((t_eval.size, n))
        step_t, step_y = _NO_STEPS, np.empty((0, n))
    else:
        t_eval, ev_out = _NO_STEPS, np.empty((0, n))
        step_t, step_y = np.empty(chunk), np.empty((chunk, n))
        ts, ys = [np.zeros(1)], [y.copy()[None, :]]
    c_addr, jit_addr = _addresses(flow)
    state = np.zeros(9)
    state[1] = -1.0
    started = time.perf_counter()
    while True:
        status = _run(c_addr, jit_addr, c, state, yf, t_end, rtol, atol, t_eval, ev_out, step_t,
                      step_y, chunk)
        if ev_out.size == 0 and step_t.size:
            k = int(state[6])
            ts.append(step_t[:k].copy())
            ys.append(step_y[:k].copy())
        if status == _DONE:
            break
        if status == _BAD_TIMES:
            raise SymiclError("t_eval must be increasing and within [0, t_end]")
        steps, t_now = int(state[3]), state[0]
        if status == _TOO_SMALL:
            raise SymiclError(f"integration failed (method 'numba-dop853'): the step size fell "
                              f"below the round-off limit at t = {t_now:.6g}")
        if status == _NOT_FINITE:
            raise SymiclError(f"integration failed (method 'numba-dop853'): the solution is no "
                              f"longer finite at t = {t_now:.6g} (the flow diverges)")
        elapsed = time.perf_counter() - started
        over_steps = max_steps is not None and steps >= max_steps
        over_time = time_limit is not None and elapsed >= time_limit
        if over_steps or over_time:
            budget = (f"{steps} steps (max_steps = {max_steps})" if over_steps
                      else f"{elapsed:.1f} s (time_limit = {time_limit} s)")
            raise StiffnessError(
                f"integration stopped (method 'numba-dop853') after {budget} at t = {t_now:.6g} "
                f"of {t_end:.6g}, step size {state[1]:.3g}: the flow looks stiff (an explicit "
                f"method needs steps of order 1/|largest Jacobian eigenvalue|); use "
                f"method='LSODA' or method='Radau', which use the generated Jacobian")
    _, _, _, steps, rejected, nfev, _, _, dense = state.tolist()
    steps, rejected, nfev, dense = int(steps), int(rejected), int(nfev), int(dense)
    if step_t.size == 0:
        return DOP853Result(t_eval, ev_out, steps, rejected, nfev, dense)
    return DOP853Result(np.concatenate(ts), np.concatenate(ys), steps, rejected, nfev, dense)

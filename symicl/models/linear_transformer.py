"""The one-layer linear transformer trained on in-context regression.

Tokens z_n = (x_n; y_n), n = 1..N, and the query z_q = (x_q; 0) form
Z = [z_1 .. z_N z_q].  One layer, one head, no softmax:

    f(Z) = Z + W^P (Z Z^T / N) W^Q Z,

and the prediction is the y-rows of the last column of f(Z).  With N
symbolic the moment matrix is written exactly as

    Z Z^T / N = mean_n(z_n z_n^T) + z_q z_q^T / N,

so the query token sits inside the x-x block S_xx, as in the model.

Inputs x ~ N(0, S), S = diag(s_1..s_d): we work in the eigenbasis of the
input covariance, which loses nothing since the tasks share it.  Tasks:

* ``aligned``: y = Lambda x, Lambda = diag(lambda_a), lambda_a iid N(0,1)
  (vector-valued, d outputs);
* ``isotropic``: y = w^T x, w ~ N(0, I_d) (scalar output).

Reductions: ``none`` (all eight blocks of W^P and W^Q), ``null-zero``
(P21 = Q21 = 0 and the inert blocks P11, P12, Q12, Q22 dropped: only
p2 = P22 and q1 = Q11 remain), ``aligned`` (p2 = diag(p), q1 = diag(q)).
"""

from __future__ import annotations

from typing import Sequence

import sympy as sp

from .. import symbols
from ..context import Context
from ..errors import ModelError
from ..expectation import Distribution
from ..matrix_level import models as matrix_twins
from ..model import Model
from ..sources import INPUTS, input_constants, input_options, inputs as input_law

__all__ = ["linear_transformer", "attention_variant", "learned_function", "per_mode_model", "TASKS",
           "REDUCTIONS", "KQ"]

TASKS = ("aligned", "isotropic")
REDUCTIONS = ("none", "null-zero", "aligned", "diagonal", "odd-last")
# reductions by sign symmetry for several heads or layers: the parity of each layer
PARITY_REDUCTIONS = ("diagonal", "odd-last")
KQ = ("merged", "separate")


def _spectrum(dim: int, spectrum):
    if spectrum is None:
        return symbols.spectrum(dim)
    values = []
    for v in spectrum:
        if isinstance(v, float) and not abs(v) < float("inf"):  # inf or nan
            raise ModelError(f"input eigenvalues must be finite numbers > 0, got {v}")
        try:
            value = sp.nsimplify(v, rational=True) if isinstance(v, float) else sp.sympify(v)
        except (sp.SympifyError, TypeError, ValueError):
            raise ModelError(f"input eigenvalue {v!r} is not a number or a SymPy expression") \
                from None
        values.append(value)
    if len(values) != dim:
        raise ModelError(f"spectrum has {len(values)} eigenvalues for dimension {dim}")
    for v in values:
        if not isinstance(v, sp.Expr) or v.has(sp.nan, sp.oo, -sp.oo, sp.zoo):
            raise ModelError(f"input eigenvalues must be finite numbers > 0, got {v}")
        if v.is_number and not v.is_positive:
            raise ModelError(f"input eigenvalues must be positive, got {v}")
        if v.is_positive is not True:
            raise ModelError(f"input eigenvalue {v} is not known to be positive; use numbers > 0 "
                             f"or symbols declared positive, e.g. sympy.Symbol('s', positive=True)")
    return values


def _weights(prefix: str, dim: int, out: int, reduction: str, diag_name: str, lower: bool):
    """W^P (lower=True: the y-rows act) or W^Q, with the reduction applied.

    Returns the full (d+out) x (d+out) matrix and its named blocks.
    """
    size = dim + out
    full = symbols.matrix(prefix, size, size)
    letter = "P" if prefix == "WP" else "Q"
    blocks = {
        f"{letter}11": full[:dim, :dim], f"{letter}12": full[:dim, dim:],
        f"{letter}21": full[dim:, :dim], f"{letter}22": full[dim:, dim:],
    }
    if reduction == "none":
        return full, blocks
    active = f"{letter}22" if lower else f"{letter}11"
    n_active = out if lower else dim
    if reduction == "aligned":
        active_block = sp.diag(*symbols.vector(diag_name, n_active))
    else:
        active_block = blocks[active]
    mat = sp.zeros(size, size)
    if lower:
        mat[dim:, dim:] = active_block
    else:
        mat[:dim, :dim] = active_block
    return mat, {active: active_block}


def _data_law(dim: int, tasks: str, s, N, inputs: str = "gaussian",
              task_law: str = "gaussian"):
    """The data law of in-context regression: task, context and query.

    Returns (u, xq, label, task, context, query): the context sample u (N iid
    copies) and the query x_q, both of the input law ``inputs`` with covariance S
    (N(0, S) by default; :func:`symicl.sources.inputs`), the label map x -> y and the task
    group (lambda for aligned tasks y = diag(lambda) x, w for isotropic tasks
    y = w^T x; iid entries of unit variance and the law ``task_law``, N(0, 1) by default).
    """
    u = symbols.vector("u", dim)
    xq = symbols.vector("x", dim)
    if tasks == "aligned":
        lam = symbols.vector("lambda", dim)
        task = input_law(task_law, lam, None, name="lambda")
        label = lambda x: sp.diag(*lam) * sp.Matrix(x)  # noqa: E731
    else:
        w = symbols.vector("w", dim)
        task = input_law(task_law, w, None, name="w")
        label = lambda x: sp.Matrix(w).T * sp.Matrix(x)  # noqa: E731
    context = Context(input_law(inputs, u, s, name="u"), N=N)
    query = input_law(inputs, xq, s, name="x")
    return u, xq, label, task, context, query


def linear_transformer(dim: int = 1, reduction: str = "none", tasks: str = "aligned",
                       N=None, spectrum: Sequence | None = None, heads: int = 1,
                       kq: str = "merged", rank: int | None = None, layers: int = 1,
                       inputs: str = "gaussian", task_law: str = "gaussian") -> Model:
    """The linear transformer on in-context regression, as a :class:`Model`.

    ``dim`` is the input dimension d; ``N`` the context length (symbolic by
    default); ``spectrum`` the input eigenvalues (symbolic s_1..s_d by
    default).  Parameter names: ``WP_i_j``, ``WQ_i_j`` (1-based entries of the
    full matrices, x-part first) or ``p_a``, ``q_a`` for the aligned reduction.

    ``heads`` H, ``kq`` (merged or separate key and query of ``rank`` r) and
    ``layers`` L give the attention variants of :func:`attention_variant`
    (reduction none, diagonal or odd-last for merged heads); the defaults are the
    one-head one-layer merged model.  Reduction ``diagonal`` (several heads or layers,
    merged key and query): every W^P_{l,h}, W^Q_{l,h} diagonal, entries that act on
    nothing dropped.  The diagonal matrices are the fixed set of the sign flips
    (x_a, y_a) -> -(x_a, y_a) and y_a -> -y_a (aligned tasks), x_a -> -x_a with
    w_a -> -w_a and y -> -y (scalar tasks), W -> J W J, which leave the data law
    and the loss unchanged; so the flow, GD and SGD never leave them.  With one
    head and one layer this subspace is the aligned reduction.  Reduction
    ``odd-last`` (d = 1): the layers before the last diagonal, the last one
    anti-diagonal (W^P's y-row reads x, W^Q's x-y and y-x entries): the fixed set of
    y -> -y composed with W_L -> -W_L (the sign of one layer's W^P and W^Q together
    is a symmetry), so kept by the flow as well.
    ``inputs`` is the law of the input coordinates (gaussian, uniform, rademacher,
    laplace, kurtosis; each with the variance the spectrum gives it), ``task_law`` the
    law of the task entries (the same choices, unit variance; kurtosis shares kappa).
    """
    if not isinstance(dim, int) or dim < 1:
        raise ModelError(f"dimension must be a positive integer, got {dim!r}")
    if tasks not in TASKS:
        raise ModelError(f"unknown task distribution {tasks!r}; choose one of {', '.join(TASKS)}")
    if reduction not in REDUCTIONS:
        raise ModelError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
    variant = _check_variant(heads, kq, rank, layers)
    if reduction in PARITY_REDUCTIONS:
        if not variant:
            raise ModelError(f"reduction {reduction!r} is for several heads or layers; with "
                             f"one head and one layer use reduction aligned (the diagonal "
                             f"subspace)")
        if kq != "merged":
            raise ModelError(f"reduction {reduction!r} needs merged key and query (--kq "
                             f"merged): W^K^T W^Q of separate heads is not a diagonal "
                             f"parametrisation")
        if reduction == "odd-last" and (dim != 1 or tasks != "aligned"):
            raise ModelError("reduction 'odd-last' is defined at d = 1 with aligned tasks "
                             "(its sign symmetry pairs x with y)")
    elif variant and reduction != "none":
        raise ModelError(f"reduction {reduction!r} is defined for the one-head one-layer model "
                         f"with merged key and query; with heads, separate key/query or layers "
                         f"use reduction none (or diagonal / odd-last, merged heads)")
    s = _spectrum(dim, spectrum)
    out = dim if tasks == "aligned" else 1

    u, xq, label, task, context, query = _data_law(dim, tasks, s, N, inputs, task_law)

    z = sp.Matrix.vstack(sp.Matrix(u), label(u))
    zq = sp.Matrix.vstack(sp.Matrix(xq), sp.zeros(out, 1))
    moments = context.mean(z * z.T) + zq * zq.T / context.N
    target = label(xq)
    options = {"dim": dim, "reduction": reduction, "tasks": tasks,
               "N": "N" if N is None else str(N),
               "spectrum": "symbolic" if spectrum is None else [str(v) for v in s],
               **({} if inputs == "gaussian" else {"inputs": inputs}),
               **({} if task_law == "gaussian" else {"task_law": task_law})}
    if variant:
        blocks, prediction = attention_variant(moments, zq, dim, **variant,
                                               parity=_parity(reduction, layers))
        options.update(variant)
        return Model("linear-transformer", blocks, Distribution(task, query, context),
                     prediction=prediction, target=target, options=options)

    WP, p_blocks = _weights("WP", dim, out, reduction, "p", lower=True)
    WQ, q_blocks = _weights("WQ", dim, out, reduction, "q", lower=False)
    prediction = WP[dim:, :] * (moments * (WQ * zq))
    order = ["P11", "P12", "P21", "P22", "Q11", "Q12", "Q21", "Q22"]
    blocks = {k: v for k, v in sorted({**p_blocks, **q_blocks}.items(),
                                       key=lambda kv: order.index(kv[0]))}
    return Model("linear-transformer", blocks, Distribution(task, query, context),
                 prediction=prediction, target=target, options=options)


def _check_variant(heads, kq, rank, layers) -> dict:
    """The attention-variant options, checked; {} for the default model (one merged head,
    one layer), else {"heads", "kq", ["rank",] "layers"} as recorded in the options."""
    for name, value in (("heads", heads), ("layers", layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelError(f"{name} must be a positive integer, got {value!r}")
    if kq not in KQ:
        raise ModelError(f"unknown key-query form {kq!r}; choose one of {', '.join(KQ)}")
    if rank is not None:
        if kq != "separate":
            raise ModelError("rank applies to separate key and query (kq = separate); merged "
                             "key-query weights are full D x D matrices")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ModelError(f"rank must be a positive integer, got {rank!r}")
    if heads == 1 and layers == 1 and kq == "merged":
        return {}
    out = {"heads": heads, "kq": kq, "layers": layers}
    if kq == "separate":
        out["rank"] = 1 if rank is None else rank
    return out


def _parity(reduction: str, layers: int) -> tuple | None:
    """Per-layer parity of a sign-symmetry reduction ("even": diagonal, "odd":
    anti-diagonal), None for the full variant."""
    if reduction not in PARITY_REDUCTIONS:
        return None
    return ("even",) * (layers - 1) + ("odd" if reduction == "odd-last" else "even",)


def _block_name(prefix: str, layer: int, head: int, one: bool) -> str:
    return prefix if one else f"{prefix}_{layer}_{head}"


def attention_variant(moments: sp.Matrix, zq: sp.Matrix, dim: int, heads: int, kq: str,
                      layers: int, rank: int = 1, parity: tuple | None = None):
    """Blocks and prediction of H-head, L-layer linear attention on the tokens' moments.

    With M_1 = Z Z^T / N (``moments``, the query inside) each layer l updates
    every token by the same map,

        Z_{l+1} = (I + A_l) Z_l,   A_l = sum_h W^P_{l,h} M_l W^Q_{l,h},
        M_{l+1} = Z_{l+1} Z_{l+1}^T / N = (I + A_l) M_l (I + A_l)^T,

    and the prediction is the label slot of the query after the last layer,
    the y-rows of (I + A_L) ... (I + A_1) z_q.  Merged key-query: W^Q_{l,h} is a
    D x D block ``WQ``.  Separate key and query of rank r: W^Q_{l,h} =
    (W^K_{l,h})^T W^Q_{l,h} with r x D blocks ``WK``, ``WQ`` (so the merged
    role is played by a matrix of rank <= r).  Blocks are named ``WP``, ``WQ``
    (``WK``) with one head and one layer, else ``WP_l_h``, ``WQ_l_h``
    (``WK_l_h``), 1-based; their entries append ``_i_j``.  ``parity``: per layer
    "even" (merged blocks diagonal) or "odd" (d = 1: anti-diagonal), without the
    entries that act on nothing (the last layer's W^P x-rows; its W^Q y-columns
    when it is also the first).
    """
    D = moments.shape[0]
    one = heads == 1 and layers == 1
    blocks, M, z = {}, moments, zq

    def keep(W, layer, row_ok, col_ok):
        odd = parity[layer - 1] == "odd"
        return sp.Matrix(D, D, lambda i, j: W[i, j] if row_ok(i) and col_ok(j) and
                         (i == j if not odd else (i < dim) != (j < dim)) else 0)

    for layer in range(1, layers + 1):
        A = sp.zeros(D, D)
        mapped = sp.zeros(D - dim, 1)
        last = layer == layers
        for head in range(1, heads + 1):
            names = {p: _block_name(p, layer, head, one) for p in ("WP", "WK", "WQ")}
            WP = symbols.matrix(names["WP"], D, D)
            if parity:
                WP = keep(WP, layer, lambda i: not last or i >= dim, lambda j: True)
            blocks[names["WP"]] = WP
            if kq == "merged":
                WQ = symbols.matrix(names["WQ"], D, D)
                if parity:
                    WQ = keep(WQ, layer, lambda i: True, lambda j: j < dim or layers > 1)
                blocks[names["WQ"]] = WQ
            else:
                WK = symbols.matrix(names["WK"], rank, D)
                WQs = symbols.matrix(names["WQ"], rank, D)
                blocks[names["WK"]], blocks[names["WQ"]] = WK, WQs
                WQ = WK.T * WQs
            if layer == layers:   # only the query's label slot is read after the last layer
                mapped += WP[dim:, :] * (M * (WQ * z))
            else:
                A += WP * M * WQ
        if layer == layers:
            return blocks, z[dim:, :] + mapped
        T = sp.eye(D) + A
        z = T * z
        M = T * M * T.T
    raise AssertionError("unreachable")


def statistics(dim: int, out: int) -> sp.Matrix:
    """The symmetric (d + out) x (d + out) matrix of named context statistics

        S = Z Z^T / N = [[S_xx, S_xy], [S_xy^T, S_yy]]   (query inside S_xx),

    entries ``Sxx_a_b``, ``Sxy_a_c``, ``Syy_c_e`` (upper triangle named; with scalar tasks
    ``Sxy_a`` and ``Syy``)."""
    D = dim + out

    def name(i, j):
        i, j = min(i, j), max(i, j)
        if j < dim:
            return f"Sxx_{i + 1}_{j + 1}"
        if i < dim:
            return f"Sxy_{i + 1}" + (f"_{j - dim + 1}" if out > 1 else "")
        return "Syy" + (f"_{i - dim + 1}_{j - dim + 1}" if out > 1 else "")
    return sp.Matrix(D, D, lambda i, j: sp.Symbol(name(i, j), real=True))


def learned_function(model: Model) -> sp.Matrix | None:
    """What the model computes on the query, as a function of the context statistics: the
    prediction rebuilt by :func:`attention_variant` on the symbolic moments S of
    :func:`statistics` and the query z_q = (x_q; 0), a polynomial in the parameters, S and
    x_q (bilinear in S and x_q with one layer: y_hat = sum_h W^P_h[y, :] S W^Q_h z_q).
    None for the one-layer reductions (theirs is the block products of the spec)."""
    o = model.options
    if o.get("reduction", "none") not in ("none", *PARITY_REDUCTIONS) \
            or model.name != "linear-transformer":
        return None
    dim, out = o["dim"], (o["dim"] if o["tasks"] == "aligned" else 1)
    variant = _check_variant(o.get("heads", 1), o.get("kq", "merged"), o.get("rank"),
                             o.get("layers", 1)) or {"heads": 1, "kq": "merged", "layers": 1}
    zq = sp.Matrix.vstack(sp.Matrix(symbols.vector("x", dim)), sp.zeros(out, 1))
    _, prediction = attention_variant(statistics(dim, out), zq, dim, **variant,
                                      parity=_parity(o.get("reduction", "none"),
                                                     variant["layers"]))
    own = {p.name: p for p in model.parameters}
    return prediction.xreplace({s: own[s.name] for s in prediction.free_symbols
                                if s.name in own})


def per_mode_model(dim: int = 1, N=None, spectrum: Sequence | None = None) -> Model:
    """The per-mode approximation of the aligned transformer, derived.

    With scalar tasks y = w^T x the aligned reduction's exact loss depends on
    the gains a_a = p q_a mode by mode.  Writing a_a = p_a q_a in it gives the
    per-mode loss of the vector model (the ICL paper's approximation),

        L_pm(p, q) = L_scalar(p = 1, q_a = p_a q_a),

    a model defined by its loss, with the parameters p_a, q_a of the aligned
    reduction.  It differs from the exact aligned loss at order 1/N.
    """
    scalar = linear_transformer(dim, reduction="aligned", tasks="isotropic", N=N, spectrum=spectrum)
    p, q = symbols.vector("p", dim), symbols.vector("q", dim)
    loss = scalar.expected_loss().xreplace({scalar.parameter("p_1"): 1})
    loss = loss.xreplace({qa: pa * qa for pa, qa in zip(p, q)})
    options = {**scalar.options, "tasks": "aligned", "reduction": "per-mode"}
    return Model("linear-transformer-per-mode", {"P22": sp.diag(*p), "Q11": sp.diag(*q)},
                 loss=loss, options=options)


# -- the model specification ---------------------------------------------------------------
def default_spectrum(dim: int) -> tuple[float, ...]:
    """s_a = 2 * 4^(-(a-1)/(d-1)): s_1 / s_d = 4 (2 and 1/2 at d = 2); 1 at d = 1."""
    return tuple(2.0 * 4.0 ** (-a / (dim - 1)) if dim > 1 else 1.0 for a in range(dim))


def _constants(options: dict) -> dict:
    """N (if not given 8, or 32 with two or more layers) and s_a: the spectrum, else
    s_1/s_d = anisotropy (geometric), else :func:`default_spectrum`.

    With layers the per-example loss is of high degree in the data (degree 16 in
    the weights at L = 2) and its gradients heavy-tailed: at N = 8 SGD itself
    diverges (a rare huge step), at N = 32 it follows the flow."""
    dim = options["dim"]
    spectrum, k = options.get("spectrum"), options.get("anisotropy")
    if spectrum is not None and k is not None:
        raise ModelError("give the spectrum or the anisotropy, not both")
    if k is not None:
        if dim == 1 and k != 1:
            raise ModelError(f"anisotropy = {k:g} needs dim >= 2 (dim = 1 has one mode)")
        spectrum = tuple(float(k ** (0.5 - a / (dim - 1))) if dim > 1 else 1.0
                         for a in range(dim))
    spectrum = spectrum or default_spectrum(dim)
    if len(spectrum) != dim:
        raise ModelError(f"spectrum has {len(spectrum)} eigenvalues for dimension {dim}")
    N = options.get("N") or (32 if options.get("layers", 1) > 1 else 8)
    return {"N": N, **{f"s_{a + 1}": float(v) for a, v in enumerate(spectrum)},
            **input_constants(options)}


def _plan_for(options: dict) -> dict:
    """Two or more layers: eta 0.005 and batch 256, quick or not (heavier-tailed gradients)."""
    return {"eta": 0.005, "batch": 256} if options.get("layers", 1) > 1 else {}


def _out(options) -> int:
    return options["dim"] if options["tasks"] == "aligned" else 1


def _variant(options: dict) -> dict:
    """The attention-variant options of a spec's options ({} for the default model)."""
    return _check_variant(options.get("heads", 1), options.get("kq", "merged"),
                          options.get("rank"), options.get("layers", 1))


def _variant_shapes(options: dict) -> dict:
    """Block name -> shape for an attention variant (the blocks of :func:`attention_variant`)."""
    v, D = _variant(options), options["dim"] + _out(options)
    one = v["heads"] == 1 and v["layers"] == 1
    shapes = {}
    for layer in range(1, v["layers"] + 1):
        for head in range(1, v["heads"] + 1):
            shapes[_block_name("WP", layer, head, one)] = (D, D)
            if v["kq"] == "separate":
                shapes[_block_name("WK", layer, head, one)] = (v["rank"], D)
                shapes[_block_name("WQ", layer, head, one)] = (v["rank"], D)
            else:
                shapes[_block_name("WQ", layer, head, one)] = (D, D)
    return shapes


def _variant_start(model: Model, options: dict, scale: float, seed: int):
    """Small balanced weights for an attention variant, every head and layer alike up to a
    perturbation: W^P y-block = scale I; merged W^Q x-block = scale I; separate W^K, W^Q row k
    = scale e_a on the x-part (a = (h - 1) r + k mod d: heads start on different input
    directions); plus scale/4 times iid N(0, 1) on every entry (seeded), so that heads differ."""
    import numpy as np

    from ..spec import MatrixPacking

    d = options["dim"]
    shapes = _variant_shapes(options)
    rng = np.random.default_rng([seed, 7])
    mats = {}
    for name, (rows, cols) in shapes.items():
        W = np.zeros((rows, cols))
        head = int(name.rsplit("_", 1)[1]) if "_" in name else 1
        if name.startswith("WP"):
            W[d:, d:] = np.eye(rows - d)
        elif rows == cols:               # merged W^Q
            W[:d, :d] = np.eye(d)
        else:                            # separate W^K, W^Q: rank rows
            for k in range(rows):
                W[k, ((head - 1) * rows + k) % d] = 1.0
        mats[name] = scale * (W + 0.25 * rng.standard_normal((rows, cols)))
    return MatrixPacking(model, shapes).pack(mats)


def _start(model: Model, options: dict, scale: float, seed: int):
    """The small balanced aligned start: P22 = scale I, Q11 = scale I, every other block 0
    (attention variants: :func:`_variant_start`)."""
    import numpy as np

    from ..spec import MatrixPacking

    if _variant(options):
        return _variant_start(model, options, scale, seed)
    d, D = options["dim"], options["dim"] + _out(options)
    pack = MatrixPacking(model, {"WP": (D, D), "WQ": (D, D)})
    WP, WQ = np.zeros((D, D)), np.zeros((D, D))
    WP[d:, d:] = scale * np.eye(D - d)
    WQ[:d, :d] = scale * np.eye(d)
    return pack.pack({"WP": WP, "WQ": WQ})


def _readout(model: Model, options: dict, constants: dict):
    """Gains a_a = (W^P)_{y_a y_a} (W^Q)_{aa}: the predictor p2 q1 = diag(a) on the main path."""
    from ..spec import Readout

    if _variant(options):
        return _variant_readout(model, options)
    d, out = options["dim"], _out(options)
    names = [p.name for p in model.parameters]
    pairs = [(names.index(f"WP_{d + (a if out > 1 else 0) + 1}_{d + (a if out > 1 else 0) + 1}"),
              names.index(f"WQ_{a + 1}_{a + 1}")) for a in range(d)]
    i, j = (list(x) for x in zip(*pairs))
    return Readout("gain", tuple(f"a_{a + 1}" for a in range(d)),
                   lambda th: th[..., i] * th[..., j], "a_a = p_a q_a, the learned per-mode gain")


def _variant_readout(model: Model, options: dict):
    """One layer: the learned map's main-path gains on the query, a_a = sum_h
    (W^P_h)_{y_a y_a} (W^Q_h)_{aa} (separate: W^Q_h = W^K_h^T W^Q_h; scalar tasks: y_a = y);
    several layers: every parameter (the end-to-end map is not a product of two blocks)."""
    import numpy as np

    from ..spec import MatrixPacking, Readout, parameter_readout

    v, d, out = _variant(options), options["dim"], _out(options)
    if v["layers"] > 1:
        return parameter_readout(model)
    shapes = _variant_shapes(options)
    pack = MatrixPacking(model, shapes)
    one = v["heads"] == 1
    names = [(_block_name("WP", 1, h, one), _block_name("WK", 1, h, one),
              _block_name("WQ", 1, h, one)) for h in range(1, v["heads"] + 1)]
    ya = [d + (a if out > 1 else 0) for a in range(d)]

    def gains(theta):
        W = pack.unpack(theta)
        total = 0.0
        for p, k, q in names:
            Q = W[q] if v["kq"] == "merged" else np.einsum("...ri,...rj->...ij", W[k], W[q])
            total = total + W[p][..., ya, ya] * Q[..., range(d), range(d)]
        return total

    return Readout("gain", tuple(f"a_{a + 1}" for a in range(d)), gains,
                   "a_a = sum_h (W^P_h)_{y_a y_a} (W^Q_h)_{aa}, the learned map's main-path gain")


def hand_written(model, options, constants, batch):
    """:class:`~symicl.simulate.TransformerSGD` (Wishart contexts, fused Numba gradients)
    behind the Simulator interface, for the one-head one-layer merged model; None for the
    attention variants (they get the SGD generated from their definition)."""
    from ..simulate import TransformerSGD
    from ..spec import MatrixSimulator

    if _variant(options):
        return None
    d, N = options["dim"], constants["N"]
    if N != int(N):
        raise ModelError(f"context length N must be an integer, got {N}")
    sim = TransformerSGD(d, int(N), [constants[f"s_{a + 1}"] for a in range(d)],
                         tasks=options["tasks"], batch=batch)

    def minibatch(W, rng):
        loss, gP, gQ = sim.minibatch_gradient(W["WP"], W["WQ"], rng)
        return loss, {"WP": gP, "WQ": gQ}

    def examples(W, n, rng):
        loss, gP, gQ = sim.prompt_gradients(W["WP"], W["WQ"], *sim.sample(rng, (n,)))
        return loss, {"WP": gP, "WQ": gQ}

    return MatrixSimulator(model, {"WP": (sim.D, sim.D), "WQ": (sim.D, sim.D)}, batch,
                           minibatch, examples)


def _extra_checks(ex):
    """The reduced flows: the aligned reduction equals the full flow from the aligned start,
    and the paper's per-mode flow against SGD where the two flows differ."""
    import numpy as np

    from ..simulate import integrate
    from ..verify.checks import bound_check, info
    from ..verify.steps import compare, seed_stats

    if _variant(ex.options):
        return [], {}
    d, opts, t = ex.options["dim"], ex.options, ex.t
    aligned = linear_transformer(d, reduction="aligned", tasks=opts["tasks"],
                                 inputs=opts.get("inputs", "gaussian"),
                                 task_law=opts.get("task_law", "gaussian"))
    theta0 = [ex.plan.init] * len(aligned.parameters)
    gains = _aligned_gains(aligned, d)
    flow_args = dict(t_eval=t, method="DOP853", rtol=1e-12, atol=1e-14, backend="numpy")
    a_aligned = gains(integrate(aligned, theta0, float(t[-1]), ex.constants, **flow_args).theta)
    a_full = ex.read(ex.flow_path.theta)
    checks = [bound_check("aligned reduction vs full flow from the aligned start: max |a| gap",
                          float(np.max(np.abs(a_aligned - a_full))), 1e-8,
                          note="the full flow keeps the aligned subspace")]
    series = {"half_time": [float(t[int(np.argmax(a_full[:, a] >= a_full[-1, a] / 2))])
                            for a in range(d)]}
    if opts["tasks"] != "aligned":
        return checks, series
    per_mode = per_mode_model(d)
    a_paper = _aligned_gains(per_mode, d)(
        integrate(per_mode, theta0, float(t[-1]), _own(per_mode, ex.constants),
                  **flow_args).theta)
    sgd = ex.read(ex.sgd.theta)
    gd = ex.read(ex.gd_path)
    _, se, _ = seed_stats(sgd)
    # the per-mode prediction carried to the same eta: its flow plus GD's own lag
    err_exact, z_exact, _ = compare(sgd, gd)
    err_paper, z_paper, _ = compare(sgd, a_paper + (gd - a_full))
    apart = float(np.max(np.abs(a_paper - a_full)))
    resolution = float(np.max(se))
    series.update({"readout_per_mode_flow": a_paper.tolist()})
    if apart <= 5 * resolution:
        checks.append(info("per-mode flow vs exact flow: max |a| gap", 0.0, apart, resolution,
                           note="the two flows coincide within 5 SE here (equal spectra or "
                                "large N): nothing for SGD to tell apart"))
    else:
        checks.append(bound_check("exact error / per-mode error (SGD vs each flow, both at "
                                  "this eta)", err_exact / err_paper, 1.0,
                                  note=f"max |a| error: exact {err_exact:.3g} (|z| {z_exact:.3g}), "
                                       f"per-mode {err_paper:.3g} (|z| {z_paper:.3g}); the "
                                       f"flows differ by up to {apart:.3g}"))
    return checks, series


def _own(model: Model, constants: dict) -> dict:
    """The constants of ``model`` among ``constants`` (the Gaussian per-mode model has no
    kappa)."""
    return {c.name: constants[c.name] for c in model.constants}


def _aligned_gains(model: Model, d: int):
    """theta (records, P) of an aligned or per-mode model -> gains a_a = p_a q_a (p_1 when the
    tasks are scalar)."""
    names = [p.name for p in model.parameters]
    i = [names.index(f"p_{a + 1}" if f"p_{a + 1}" in names else "p_1") for a in range(d)]
    j = [names.index(f"q_{a + 1}") for a in range(d)]
    return lambda theta: theta[..., i] * theta[..., j]


def _size(options: dict) -> int:
    """Parameters of a build: 2 (d + out)^2 in full, out^2 + d^2 null-zero, out + d aligned;
    attention variants: the sum of their blocks' sizes."""
    d, out = options["dim"], _out(options)
    v = _variant(options)
    if v and options.get("reduction") in PARITY_REDUCTIONS:   # diagonal or one layer odd: the
        # same count at d = 1 (odd last layer: W^P_yx, W^Q_xy, W^Q_yx for W^P_yy, W^Q_xx, W^Q_yy)
        D, H, L = d + out, v["heads"], v["layers"]
        return H * (2 * D * (L - 1) + out + (D if L > 1 else d))
    if v:
        return sum(r * c for r, c in _variant_shapes(options).values())
    # a parity reduction of the one-head one-layer model counts 0 here: the builder refuses it
    return {"none": 2 * (d + out) ** 2, "null-zero": out * out + d * d,
            "aligned": out + d}.get(options.get("reduction", "none"), 0)


def gain_pairs(model: Model) -> list | None:
    """(p_a, q_a) of the aligned and per-mode reductions (scalar tasks share p_1); else None."""
    if model.options.get("reduction") not in ("aligned", "per-mode"):
        return None
    names = {x.name: x for x in model.parameters}
    return [(names.get(f"p_{a}", names["p_1"]), names[f"q_{a}"])
            for a in range(1, model.options["dim"] + 1)]


def _measures(ex) -> dict:
    """Sweep measures of the per-mode flow beside the exact one."""
    from ..simulate import integrate
    from ..verify.steps import compare

    if _variant(ex.options):
        return {"gain_err_per_mode": float("nan"), "gain_z_per_mode": float("nan")}
    d, t = ex.options["dim"], ex.t
    per_mode = per_mode_model(d)
    path = integrate(per_mode, [ex.plan.init] * (2 * d), float(t[-1]),
                     _own(per_mode, ex.constants), t_eval=t,
                     method="DOP853", rtol=1e-12, atol=1e-14, backend="numpy")
    a_paper = _aligned_gains(per_mode, d)(path.theta)
    err, z, _ = compare(ex.read(ex.sgd.theta), a_paper)
    return {"gain_err_per_mode": err, "gain_z_per_mode": z}


def _spec():
    from ..spec import ModelSpec, Option

    return ModelSpec(
        name="linear-transformer",
        build=linear_transformer,
        summary="f(Z) = Z + W^P (Z Z^T / N) W^Q Z on in-context regression, the query "
                "token inside Z Z^T / N",
        options=(
            Option("dim", "int", 1, "input dimension d", low=1),
            Option("reduction", "str", "none", "none: all eight blocks; null-zero: P21 = Q21 "
                   "= 0, inert blocks dropped; aligned: p2 = diag(p), q1 = diag(q); diagonal "
                   "(several heads or layers, merged): every W^P, W^Q diagonal; odd-last (d = 1): "
                   "the last layer anti-diagonal",
                   choices=REDUCTIONS, role="derive"),
            Option("tasks", "str", "aligned", "aligned: y = diag(lambda) x, lambda ~ N(0, I); "
                   "isotropic: y = w^T x, w ~ N(0, I)", choices=TASKS),
            Option("N", "int", None, "context length (derive: symbolic N if not given)",
                   low=1, role="constant"),
            Option("spectrum", "floats", None, "input eigenvalues s_1..s_d (derive: symbolic "
                   "if not given; verify: 2 * 4^(-(a-1)/(d-1)))", positive=True,
                   role="constant"),
            Option("anisotropy", "float", None, "s_1 / s_d = k with a geometric spectrum "
                   "k^(1/2 - (a-1)/(d-1)), instead of --spectrum", low=1.0, role="numeric"),
            *input_options(),
            Option("task_law", "str", "gaussian", "law of the task entries (lambda or w), unit "
                   "variance: gaussian, uniform, rademacher, laplace, kurtosis (the kappa of "
                   "--inputs kurtosis)", choices=INPUTS),
            Option("heads", "int", 1, "attention heads H (reduction none)", low=1),
            Option("kq", "str", "merged", "merged: one D x D key-query matrix W^Q per head; "
                   "separate: W^Q = W^K^T W^Q with r x D key and query (reduction none)",
                   choices=KQ),
            Option("rank", "int", None, "rank r of separate key and query (default 1; "
                   "--kq separate only)", low=1),
            Option("layers", "int", 1, "layers L, every token updated, the prediction read "
                   "from the query's label slot after the last (reduction none)", low=1),
        ),
        defaults={"dim": 2},
        plan_for=_plan_for,
        constants=_constants,
        init=_start,
        readout=_readout,
        readout_name="gain",
        simulator=hand_written,
        extra_checks=_extra_checks,
        measures={"gain_err_per_mode": "max over t and modes of |mean a_SGD - a_per-mode flow|",
                  "gain_z_per_mode": "max over t and modes of |mean a_SGD - a_per-mode flow| / SE"},
        extra_measures=_measures,
        matrix_level=matrix_twins.linear_transformer,
        size=_size,
        latex_heads={"WP": "W^{P}", "WQ": "W^{Q}"},
        learned_map=(("P22", "Q11"), ("P21", "Q21")),
        learned_function=learned_function,
        gain_pairs=gain_pairs,
        plot=("N", "anisotropy", ("gain_err_exact", "gain_err_per_mode")),
    )


def _per_mode_spec():
    from ..spec import ModelSpec, Option

    return ModelSpec(
        name="linear-transformer-per-mode",
        build=per_mode_model,
        summary="the paper's per-mode approximation of the aligned transformer, a model "
                "defined by its loss",
        options=(Option("dim", "int", 1, "input dimension d", low=1),
                 Option("N", "int", None, "context length (symbolic if not given)", low=1,
                        role="constant"),
                 Option("spectrum", "floats", None, "input eigenvalues (symbolic if not given)",
                        positive=True, role="constant")),
        verifiable=False,
        learned_map=(("P22", "Q11"),),
        gain_pairs=gain_pairs,
    )


SPECS = (_spec(), _per_mode_spec())

"""One point's measures: the shared verification steps reduced to numbers.

The same comparison as ``symicl verify`` (:mod:`symicl.verify.steps`), for
any model spec: the readout's seed mean against the flow and against
gradient descent on the derived loss at the point's eta, the loss windows,
and the spec's own measures.  Derived models are memoised per process and
their kernels come from the shared disk cache of :mod:`symicl.codegen`.

Gains: z-scores are taken only at records where the seeds differ; at the
shared start (t = 0) every seed holds the same number, and mean and SE are
both rounding error there.
"""

from __future__ import annotations

import numpy as np

from ..verify.steps import Experiment, compare, seed_stats

__all__ = ["measure"]


def measure(model: str, params: dict, rng_seed: int, constants: dict | None = None,
            options: dict | None = None) -> dict[str, float]:
    """Every measure (:func:`symicl.sweep.schema.measures_of`) of ``model`` at one point."""
    from ..models import spec as get_spec
    from .config import SweepConfig, point_options, point_plan

    spec = get_spec(model)
    config = SweepConfig(model, {}, {}, (), {}, options=dict(options or {}))
    opts = spec.check_options(point_options(spec, params, config), "sweep")
    plan = point_plan({**params, "seed": int(rng_seed) % (2 ** 31)})
    ex = Experiment(spec, opts, dict(constants or {}), plan)
    r = spec.readout_name
    flow, gd = ex.read(ex.flow_path.theta), ex.read(ex.gd_path)
    sgd = ex.read(ex.sgd.theta)
    err_exact, z_exact, _ = compare(sgd, flow)
    _, z_gd, _ = compare(sgd, gd)
    window = ex.gd_window_loss
    m, se, _ = seed_stats(ex.sgd.loss[:, 1:])
    loss_z = float(np.max(np.abs(m - window[1:]) / np.where(se > 0, se, np.inf)))
    out = {f"{r}_err_exact": err_exact, f"{r}_z_exact": z_exact,
           f"{r}_err_gd_flow": float(np.max(np.abs(gd - flow))), f"{r}_z_gd": z_gd,
           "loss_z_gd": loss_z, "loss_end": float(ex.flow_path.loss[-1])}
    if spec.extra_measures is not None:
        out.update(spec.extra_measures(ex))
    return out

"""Grokking on modular addition (Nanda et al. 2023 setup), with symicl's measures.

    python -m numerics.studies.grokking --config quick --out DIR [--device cuda]

Trains all seeds at once (seed axis in the parameters; each seed has its own
initialisation and its own random 30% train split), full batch AdamW. At every
checkpoint it records, per head, OV = W_V W_O and QK = W_Q W_K^T, and the MLP
matrices W_in (d_model x d_mlp) and W_out^T (d_model x d_mlp, transposed so
that the row space measured is the informative, at most d_model-dimensional
one), with train/test loss and accuracy and the parameter norm. Writes
summary.json, curves.npz and grokking.png into DIR.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np

from symicl.measures import Recorder, curvature

from . import events as ev
from .common import Progress, event_spread, load_config, parse_args, setup_torch, write_json

STUDY = "grokking"


def criteria_text(c: dict) -> dict:
    return {
        "memorisation_step": f"first checkpoint with train accuracy >= {c['train_acc_threshold']}",
        "grokking_step": f"first checkpoint with test accuracy >= {c['test_acc_threshold']}",
        "ov_stabilisation_step": f"first checkpoint where the head-averaged OV subspace distance "
                                 f"||M_f (I - M_t^+ M_t)||_F / ||M_f||_F to the final checkpoint falls to "
                                 f"{c['fall_fraction']} x its initial value",
        "ov_stabilises_with_grokking": f"ov_stabilisation_step / grokking_step in [{c['around_lo']}, "
                                       f"{c['around_hi']}] and ov_stabilisation_step > memorisation_step (late)",
        "claim_rule": "the claim holds iff the per-seed flag holds for a strict majority of seeds",
    }


def make_data(torch, p, frac, seeds, device):
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    toks = np.stack([a.ravel(), b.ravel(), np.full(p * p, p)], axis=1)
    labels = (a.ravel() + b.ravel()) % p
    n_train = int(round(frac * p * p))
    tr, te = [], []
    for s in seeds:
        perm = np.random.default_rng(int(s)).permutation(p * p)
        tr.append(perm[:n_train])
        te.append(perm[n_train:])
    tr, te = np.stack(tr), np.stack(te)
    T = lambda x: torch.as_tensor(x, device=device)  # noqa: E731
    return (T(toks[tr]), T(labels[tr])), (T(toks[te]), T(labels[te]))


def train(torch, device, cfg, seeds, progress):
    from .ensemble_models import GrokTransformer

    m, t = cfg["model"], cfg["train"]
    S, p = len(seeds), cfg["p"]
    model = GrokTransformer(S, seeds, p, m["d_model"], m["n_heads"], m["d_head"], m["d_mlp"], device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=t["lr"], betas=tuple(t["betas"]), weight_decay=t["weight_decay"])
    warm = t.get("warmup", 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(k / warm, 1.0))   # Nanda: min(step/10, 1)
    (xtr, ytr), (xte, yte) = make_data(torch, p, cfg["train_fraction"], seeds, device)

    def ce(logits, y):  # per-seed mean cross-entropy, float64 log-softmax as in Nanda et al.
        lp = logits.double().log_softmax(-1)
        return -lp.gather(-1, y[..., None])[..., 0].mean(1)

    recs = [Recorder(dtype="float32") for _ in range(S)]
    losses = torch.zeros(S, t["steps"], device=device, dtype=torch.float64)
    for step in range(t["steps"] + 1):
        if step % t["ckpt_every"] == 0 or step == t["steps"]:
            with torch.no_grad():
                lo_tr, lo_te = model(xtr), model(xte)
                stats = torch.stack([ce(lo_tr, ytr), ce(lo_te, yte),
                                     (lo_tr.argmax(-1) == ytr).double().mean(1),
                                     (lo_te.argmax(-1) == yte).double().mean(1),
                                     sum((q.detach().double() ** 2).reshape(S, -1).sum(1)
                                         for q in model.parameters()).sqrt()]).cpu().numpy()
            qk, ov = model.attn[0].circuits()
            w_in = model.W_in[0].detach().to("cpu", torch.float64)
            w_out_t = model.W_out[0].detach().to("cpu", torch.float64).transpose(-1, -2)
            for s in range(S):
                mats = {f"L0.H{h}.{k}": x[s, h].numpy() for h in range(qk.shape[1]) for k, x in (("OV", ov), ("QK", qk))}
                mats["L0.mlp_in"], mats["L0.mlp_out_T"] = w_in[s].numpy(), w_out_t[s].numpy()
                recs[s].record(step, mats)
                recs[s].log(step, train_loss_eval=stats[0, s], test_loss=stats[1, s], train_acc=stats[2, s],
                            test_acc=stats[3, s], param_norm=stats[4, s])
            progress(f"step {step}/{t['steps']} train acc " + " ".join(f"{v:.3f}" for v in stats[2])
                     + " | test acc " + " ".join(f"{v:.3f}" for v in stats[3]))
        if step == t["steps"]:
            break
        loss = ce(model(xtr), ytr)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        sched.step()
        losses[:, step] = loss.detach()
    losses = losses.cpu().numpy()
    if not np.all(np.isfinite(losses)):
        raise FloatingPointError("grokking: training loss became non-finite")
    for s in range(S):
        for k in range(t["steps"]):
            recs[s].log(k, loss=losses[s, k])
    return recs


def analyse(recs, n_heads, c):
    S, steps = len(recs), recs[0].steps
    cur = {"steps": steps}
    for kind in ("OV", "QK"):
        ms = [[rec.measures(f"L0.H{h}.{kind}", ks=(1,)) for h in range(n_heads)] for rec in recs]
        cur[f"{kind.lower()}_sd"] = np.array([np.mean([m["subspace_distance"] for m in row], 0) for row in ms])
        cur[f"{kind.lower()}_erank_k0"] = np.array([np.mean([m["effective_rank"] for m in row], 0) for row in ms])
        cur[f"{kind.lower()}_erank_k1"] = np.array([np.mean([m["marginalized_effective_rank_k1"] for m in row], 0)
                                                    for row in ms])
    for name in ("mlp_in", "mlp_out_T"):
        ms = [rec.measures(f"L0.{name}", ks=(1,)) for rec in recs]
        cur[f"{name}_sd"] = np.array([m["subspace_distance"] for m in ms])
        cur[f"{name}_erank_k0"] = np.array([m["effective_rank"] for m in ms])
    for name in ("train_acc", "test_acc", "train_loss_eval", "test_loss", "param_norm"):
        cur[name] = np.stack([rec.scalar(name)[1] for rec in recs])
    cur["param_norm_curvature"] = curvature(cur["param_norm"], steps.astype(float))
    ac = [rec.autocorrelation_curvature("loss", window=c["autocorr_window"], fit_lags=1) for rec in recs]
    cur["autocorr_steps"], cur["autocorr_curvature"] = ac[0][0], np.stack([a[1] for a in ac])
    per_seed = []
    for s in range(S):
        mem = ev.first_crossing(steps, cur["train_acc"][s], c["train_acc_threshold"])
        grok = ev.first_crossing(steps, cur["test_acc"][s], c["test_acc_threshold"])
        stab = ev.fall_step(steps, cur["ov_sd"][s], c["fall_fraction"])
        per_seed.append({
            "memorisation_step": mem, "grokking_step": grok, "ov_stabilisation_step": stab,
            "qk_subspace_fall_step": ev.fall_step(steps, cur["qk_sd"][s], c["fall_fraction"]),
            "ov_stabilises_with_grokking": (ev.within_ratio(stab, grok, c["around_lo"], c["around_hi"])
                                            and mem is not None and stab > mem),
            "final_test_acc": float(cur["test_acc"][s, -1]), "final_train_acc": float(cur["train_acc"][s, -1]),
        })
    return cur, per_seed


def plot(cur, per_seed, path):
    from .plotting import EVENT_COLOURS, band_plot, mark_events, save, subplots

    st = cur["steps"]
    fig, ax = subplots(2, 3)
    band_plot(ax[0, 0], st, cur["train_acc"], "train acc")
    band_plot(ax[0, 0], st, cur["test_acc"], "test acc")
    ax[0, 0].set_title("train vs test accuracy")
    ax[0, 0].set_ylabel("accuracy")
    band_plot(ax[0, 1], st, cur["ov_sd"], "OV")
    band_plot(ax[0, 1], st, cur["qk_sd"], "QK")
    band_plot(ax[0, 1], st, cur["mlp_in_sd"], "W_in")
    ax[0, 1].set_title("subspace distance to final (head mean)")
    ax[0, 1].set_ylabel("distance / ||M_final||")
    band_plot(ax[0, 2], st, cur["ov_erank_k1"], "OV k=1")
    band_plot(ax[0, 2], st, cur["qk_erank_k1"], "QK k=1")
    band_plot(ax[0, 2], st, cur["ov_erank_k0"], "OV k=0")
    ax[0, 2].set_title("(marginalised) effective rank")
    ax[0, 2].set_ylabel("effective rank")
    band_plot(ax[1, 0], st, cur["param_norm"], "||theta||")
    ax[1, 0].set_title("parameter norm")
    ax[1, 0].set_ylabel("||theta||")
    band_plot(ax[1, 1], st[1:-1], cur["param_norm_curvature"])
    ax[1, 1].set_title("curvature of parameter norm")
    ax[1, 1].set_ylabel("d^2 ||theta|| / dstep^2")
    band_plot(ax[1, 2], cur["autocorr_steps"], cur["autocorr_curvature"])
    ax[1, 2].set_title("loss autocorrelation curvature")
    ax[1, 2].set_ylabel("curvature at lag 0")
    for i, a in enumerate(ax.ravel()):
        mark_events(a, [p["grokking_step"] for p in per_seed], color=EVENT_COLOURS[0],
                    label="grokking (test acc >= 0.95)" if i == 0 else None)
        mark_events(a, [p["ov_stabilisation_step"] for p in per_seed], color=EVENT_COLOURS[1],
                    label="OV distance halved" if i == 0 else None)
        a.set_xlabel("step")
    for a in ax[0]:
        a.legend(fontsize=7)
    fig.suptitle("grokking (modular addition): measures over training; mean over seeds, "
                 "± standard error shaded, min/max dotted, events dashed (seed range shaded)",
                 fontsize=9)
    save(fig, path)


def main(argv=None):
    args = parse_args(STUDY, __doc__.splitlines()[0], argv)
    cfg = load_config(STUDY, args.config)
    n_seeds = args.seeds or cfg["n_seeds"]
    seeds = list(range(cfg.get("seed0", 0), cfg.get("seed0", 0) + n_seeds))
    torch, device = setup_torch(args.device, cfg.get("threads"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(STUDY, cfg.get("progress_seconds", 10.0))
    c = cfg["criteria"]
    recs = train(torch, device, cfg, seeds, progress)
    if args.save_trajectories:
        for s, rec in zip(seeds, recs):
            rec.save(out / f"trajectory_seed{s}.npz")
    cur, per_seed = analyse(recs, cfg["model"]["n_heads"], c)
    events = {k: event_spread([p[k] for p in per_seed])
              for k in ("memorisation_step", "grokking_step", "ov_stabilisation_step", "qk_subspace_fall_step")}
    flag = [p["ov_stabilises_with_grokking"] for p in per_seed]
    summary = {
        "study": STUDY, "config": cfg, "seeds": seeds, "device": str(device), "torch_version": torch.__version__,
        "python": platform.python_version(), "criteria": criteria_text(c), "events": events,
        "per_seed": per_seed,
        "final": {"test_acc_mean": float(cur["test_acc"][:, -1].mean()),
                  "train_acc_mean": float(cur["train_acc"][:, -1].mean())},
        "claims": {
            "grokking_happened": ev.majority(p["grokking_step"] is not None for p in per_seed),
            "ov_subspace_stabilises_late_with_test_accuracy_jump": ev.majority(flag),
            "fraction_of_seeds_ov_with_grokking": float(np.mean(flag)),
        },
    }
    plot(cur, per_seed, out / "grokking.png")
    np.savez_compressed(out / "curves.npz", **cur)
    summary["wall_time_s"] = progress.elapsed()
    write_json(out / "summary.json", summary)
    progress(f"grokking steps {events['grokking_step']['per_seed']}, OV stabilisation steps "
             f"{events['ov_stabilisation_step']['per_seed']}; wrote {out / 'summary.json'}", force=True)
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)

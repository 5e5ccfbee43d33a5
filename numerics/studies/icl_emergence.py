"""ICL emergence in 1-4 layer attention-only transformers, with symicl's measures.

    python -m numerics.studies.icl_emergence --config quick --out DIR [--device cuda]

For each task in the config (in-context linear regression, in-context
classification) and each depth, trains all seeds at once (seed axis in the
parameters), records QK = W_Q W_K^T and OV = W_V W_O of every head with
symicl.measures.Recorder, computes the measures, detects the events by the
stated criteria (see ``criteria`` in summary.json and README.md), and writes
summary.json, curves.npz and one PNG per task into DIR.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np

from symicl.measures import Recorder, curvature

from . import events as ev
from .common import Progress, event_spread, load_config, parse_args, setup_torch, write_json

STUDY = "icl_emergence"


def criteria_text(c: dict) -> dict:
    return {
        "icl_score": "s(t) = 1 - L_query(t) / L_context_free on a fixed evaluation batch; L_context_free is "
                     "E[y_q^2] (regression: best predictor ignoring context is 0) or ln L (classification)",
        "icl_emergence_step": f"first checkpoint with s(t) >= {c['icl_score_threshold']}",
        "qk_curve": "marginalised effective rank (k = {k}) of QK = W_Q W_K^T, averaged over all heads of all "
                    "layers".format(k=c["dip_k"]),
        "erank_dip": f"argmin of the QK curve over checkpoints after the first; present iff "
                     f"(min(first, last) - min) / first >= {c['dip_min_depth']}",
        "dip_around_icl": f"dip present and dip_step / icl_emergence_step in [{c['around_lo']}, {c['around_hi']}]",
        "subspace_distance_fall_step": f"first checkpoint where the head-averaged QK subspace distance "
                                       f"||M_f (I - M_t^+ M_t)||_F / ||M_f||_F to the final checkpoint falls to "
                                       f"{c['fall_fraction']} x its initial value",
        "subspace_distance_falls_early": "subspace_distance_fall_step <= icl_emergence_step",
        "claim_rule": "a per-seed flag holds for a run iff it holds for a strict majority of seeds; a claim over "
                      "several runs holds iff it holds for every run",
    }


def train_run(torch, device, task, n_layers, cfg, seeds, progress, tag):
    from .ensemble_models import AttnOnlyTransformer

    m, t = cfg["model"], cfg["train"]
    S = len(seeds)
    model = AttnOnlyTransformer(S, seeds, n_layers, m["d_model"], m["n_heads"], m["d_head"], task.n_ctx,
                                d_in=task.d_in, vocab=task.vocab, d_out=task.d_out, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=t["lr"], betas=tuple(t["betas"]),
                            weight_decay=t["weight_decay"])
    warm = max(1, t.get("warmup", 1))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min((k + 1) / warm, 1.0))
    # data streams live on the device (one generator per device type: CPU and CUDA runs draw different data)
    gen = torch.Generator(device=device).manual_seed(int(cfg["data_seed"]) * 7919 + 31 * n_layers + seeds[0])
    eval_gen = torch.Generator(device=device).manual_seed(int(cfg["data_seed"]) * 104729 + seeds[0])
    eval_tok, eval_tgt = task.sample(S, t["eval_batch"], eval_gen, device)
    recs = [Recorder(dtype="float32") for _ in range(S)]
    losses = torch.zeros(S, t["steps"], device=device)
    for step in range(t["steps"] + 1):
        if step % t["ckpt_every"] == 0 or step == t["steps"]:
            with torch.no_grad():
                out = model(eval_tok)
                ql = task.loss(out, eval_tgt).cpu().numpy()
                base = task.baseline(eval_tgt).cpu().numpy()
                acc = task.accuracy(out, eval_tgt)
                acc = acc.cpu().numpy() if acc is not None else np.full(S, np.nan)
                norm2 = sum((p.detach().double() ** 2).reshape(S, -1).sum(1) for p in model.parameters())
                norm = norm2.sqrt().cpu().numpy()
            circ = [layer.circuits() for layer in model.layers]
            for s in range(S):
                mats = {}
                for l, (qk, ov) in enumerate(circ):
                    for h in range(qk.shape[1]):
                        mats[f"L{l}.H{h}.QK"] = qk[s, h].numpy()
                        mats[f"L{l}.H{h}.OV"] = ov[s, h].numpy()
                recs[s].record(step, mats)
                scalars = dict(query_loss=ql[s], baseline=base[s], score=1.0 - ql[s] / base[s], param_norm=norm[s])
                if np.isfinite(acc[s]):
                    scalars["accuracy"] = acc[s]
                recs[s].log(step, **scalars)
            progress(f"{tag} step {step}/{t['steps']} score " + " ".join(f"{1 - a / b:+.3f}" for a, b in zip(ql, base)))
        if step == t["steps"]:
            break
        tok, tgt = task.sample(S, t["batch"], gen, device)
        loss = task.loss(model(tok), tgt)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        sched.step()
        losses[:, step] = loss.detach()
    losses = losses.cpu().numpy()
    if not np.all(np.isfinite(losses)):
        raise FloatingPointError(f"{tag}: training loss became non-finite")
    for s in range(S):
        for k in range(t["steps"]):
            recs[s].log(k, loss=losses[s, k])
    return recs


def analyse(recs, n_layers, n_heads, c):
    """Curves (seed-stacked) and per-seed events from the recorders."""
    S = len(recs)
    steps = recs[0].steps
    cur = {"steps": steps}
    for kind in ("QK", "OV"):
        per = {key: np.zeros((S, n_layers, len(steps))) for key in ("erank_k0", "erank_k1", "erank_k2", "sd")}
        for s, rec in enumerate(recs):
            for l in range(n_layers):
                ms = [rec.measures(f"L{l}.H{h}.{kind}", ks=(1, 2)) for h in range(n_heads)]
                per["erank_k0"][s, l] = np.mean([m["effective_rank"] for m in ms], axis=0)
                per["erank_k1"][s, l] = np.mean([m["marginalized_effective_rank_k1"] for m in ms], axis=0)
                per["erank_k2"][s, l] = np.mean([m["marginalized_effective_rank_k2"] for m in ms], axis=0)
                per["sd"][s, l] = np.mean([m["subspace_distance"] for m in ms], axis=0)
        for key, v in per.items():
            cur[f"{kind.lower()}_{key}_per_layer"] = v
            cur[f"{kind.lower()}_{key}"] = v.mean(axis=1)
    for name in ("score", "query_loss", "param_norm"):
        cur[name] = np.stack([rec.scalar(name)[1] for rec in recs])
    if "accuracy" in recs[0].scalar_names:
        cur["accuracy"] = np.stack([rec.scalar("accuracy")[1] for rec in recs])
    cur["param_norm_curvature"] = curvature(cur["param_norm"], steps.astype(float))
    ac = [rec.autocorrelation_curvature("loss", window=c["autocorr_window"], fit_lags=1) for rec in recs]
    cur["autocorr_steps"] = ac[0][0]
    cur["autocorr_curvature"] = np.stack([a[1] for a in ac])
    cur["train_loss"] = np.stack([rec.scalar("loss")[1] for rec in recs])

    qk_curve = cur[f"qk_erank_k{c['dip_k']}"]
    per_seed = []
    for s in range(S):
        icl = ev.first_crossing(steps, cur["score"][s], c["icl_score_threshold"])
        d = ev.dip(steps, qk_curve[s], c["dip_min_depth"])
        fall = ev.fall_step(steps, cur["qk_sd"][s], c["fall_fraction"])
        per_seed.append({
            "icl_emergence_step": icl, "erank_dip_step": d["step"], "erank_dip_depth": d["depth"],
            "erank_dip_present": d["present"],
            "dip_around_icl": d["present"] and ev.within_ratio(d["step"], icl, c["around_lo"], c["around_hi"]),
            "subspace_distance_fall_step": fall,
            "subspace_distance_falls_early": fall is not None and icl is not None and fall <= icl,
            "final_score": float(cur["score"][s, -1]),
        })
    return cur, per_seed


def summarise_run(per_seed):
    out = {"events": {}, "flags": {}, "per_seed": per_seed}
    for key in ("icl_emergence_step", "erank_dip_step", "subspace_distance_fall_step"):
        out["events"][key] = event_spread([p[key] for p in per_seed])
    out["events"]["erank_dip_depth"] = [p["erank_dip_depth"] for p in per_seed]
    for key in ("erank_dip_present", "dip_around_icl", "subspace_distance_falls_early"):
        out["flags"][key] = {"fraction_of_seeds": float(np.mean([p[key] for p in per_seed])),
                             "majority": ev.majority(p[key] for p in per_seed)}
    out["flags"]["icl_emerged"] = {"fraction_of_seeds": float(np.mean([p["icl_emergence_step"] is not None
                                                                          for p in per_seed])),
                                   "majority": ev.majority(p["icl_emergence_step"] is not None for p in per_seed)}
    out["final_score"] = {"mean": float(np.mean([p["final_score"] for p in per_seed])),
                          "min": float(np.min([p["final_score"] for p in per_seed])),
                          "max": float(np.max([p["final_score"] for p in per_seed]))}
    return out


def claims_for(runs: dict) -> dict:
    deep = [r for r in runs.values() if r["n_layers"] >= 2]
    shallow = [r for r in runs.values() if r["n_layers"] == 1]
    return {
        "qk_marginalized_erank_dips_around_icl_in_2plus_layers":
            all(r["flags"]["dip_around_icl"]["majority"] for r in deep) if deep else None,
        "no_qk_erank_dip_around_icl_in_1_layer":
            all(not r["flags"]["dip_around_icl"]["majority"] for r in shallow) if shallow else None,
        "qk_subspace_distance_falls_early_in_2plus_layers":
            all(r["flags"]["subspace_distance_falls_early"]["majority"] for r in deep) if deep else None,
        "icl_emerges_in_2plus_layers": all(r["flags"]["icl_emerged"]["majority"] for r in deep) if deep else None,
    }


def plot_task(task_name, results, path):
    from .plotting import EVENT_COLOURS, band_plot, mark_events, save, subplots

    layers = sorted(results)
    fig, axes = subplots(len(layers), 5)
    for row, L in enumerate(layers):
        cur, per_seed = results[L]
        st = cur["steps"]
        icl = [p["icl_emergence_step"] for p in per_seed]
        ax = axes[row, 0]
        band_plot(ax, st, cur["score"], "ICL score")
        if "accuracy" in cur:
            band_plot(ax, st, cur["accuracy"], "query accuracy")
        ax.set_title(f"{task_name}, {L} layer(s): ICL score")
        ax.set_ylabel("score / accuracy")
        ax = axes[row, 1]
        for l in range(L):
            band_plot(ax, st, cur["qk_erank_k1_per_layer"][:, l], f"layer {l}")
        ax.set_title(f"{L} layer(s): QK marginalised erank (k=1)")
        ax.set_ylabel("effective rank")
        ax = axes[row, 2]
        for l in range(L):
            band_plot(ax, st, cur["qk_sd_per_layer"][:, l], f"layer {l}")
        ax.set_title(f"{L} layer(s): QK subspace distance to final")
        ax.set_ylabel("distance / ||QK_final||")
        ax = axes[row, 3]
        band_plot(ax, st, cur["qk_erank_k0"], "QK erank")
        band_plot(ax, st, cur["ov_erank_k0"], "OV erank")
        ax.set_title(f"{L} layer(s): effective rank (head mean)")
        ax.set_ylabel("effective rank")
        ax = axes[row, 4]
        band_plot(ax, cur["autocorr_steps"], cur["autocorr_curvature"])
        ax.set_title(f"{L} layer(s): loss autocorrelation curvature")
        ax.set_ylabel("curvature at lag 0")
        for i, ax in enumerate(axes[row]):
            mark_events(ax, icl, color=EVENT_COLOURS[0], label="ICL emergence" if i == 0 else None)
            ax.set_xlabel("step")
        for ax in axes[row, :4]:
            ax.legend(fontsize=7)
    fig.suptitle(f"in-context {task_name}: measures over training by depth; mean over seeds, "
                 "± standard error shaded, min/max dotted, ICL emergence dashed (seed range shaded)",
                 fontsize=9)
    save(fig, path)


def main(argv=None):
    args = parse_args(STUDY, __doc__.splitlines()[0], argv)
    cfg = load_config(STUDY, args.config)
    if args.tasks:
        keep = args.tasks.split(",")
        cfg["tasks"] = [t for t in cfg["tasks"] if t["name"] in keep]
        if not cfg["tasks"]:
            raise SystemExit(f"--tasks {args.tasks}: none of these tasks is in the config")
    if args.layers:
        cfg["layers"] = [int(x) for x in args.layers.split(",")]
    n_seeds = args.seeds or cfg["n_seeds"]
    seeds = list(range(cfg.get("seed0", 0), cfg.get("seed0", 0) + n_seeds))
    torch, device = setup_torch(args.device, cfg.get("threads"))
    from .icl_tasks import make_task

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(STUDY, cfg.get("progress_seconds", 10.0))
    c = cfg["criteria"]
    summary = {"study": STUDY, "config": cfg, "seeds": seeds, "device": str(device),
               "torch_version": torch.__version__, "python": platform.python_version(),
               "criteria": criteria_text(c), "runs": {}, "claims": {}}
    curves = {}
    for task_cfg in cfg["tasks"]:
        task = make_task(task_cfg)
        results, runs = {}, {}
        for L in cfg["layers"]:
            tag = f"{task_cfg['name']}/L{L}"
            recs = train_run(torch, device, task, L, cfg, seeds, progress, tag)
            if args.save_trajectories:
                for s, rec in zip(seeds, recs):
                    rec.save(out / f"trajectory_{task_cfg['name']}_L{L}_seed{s}.npz")
            cur, per_seed = analyse(recs, L, cfg["model"]["n_heads"], c)
            results[L] = (cur, per_seed)
            runs[tag] = {"task": task_cfg["name"], "n_layers": L, **summarise_run(per_seed)}
            for key, v in cur.items():
                curves[f"{tag}/{key}"] = v
            e = runs[tag]["events"]
            summary["wall_time_s"] = progress.elapsed()
            write_json(out / "summary.json", summary | {"runs": summary["runs"] | runs, "complete": False})
            progress(f"{tag} done: icl steps {e['icl_emergence_step']['per_seed']}, dip steps "
                     f"{e['erank_dip_step']['per_seed']}, sd fall {e['subspace_distance_fall_step']['per_seed']}",
                     force=True)
        summary["runs"].update(runs)
        summary["claims"][task_cfg["name"]] = claims_for(runs)
        plot_task(task_cfg["name"], results, out / f"icl_{task_cfg['name']}.png")
    summary["wall_time_s"] = progress.elapsed()
    summary["complete"] = True
    np.savez_compressed(out / "curves.npz", **curves)
    write_json(out / "summary.json", summary)
    progress(f"wrote {out / 'summary.json'}", force=True)
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)

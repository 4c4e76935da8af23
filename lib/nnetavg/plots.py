"""PNG plots and a markdown summary of experiments read from their logs (``nnet-report``).

Plots (matplotlib, Agg backend, no display needed):

* ``curves.png``: CV cross-entropy and frame accuracy of the averaged model against training
  frames seen, one line per experiment; with one experiment, each job's training objective too;
* ``learning_rate.png``: the learning rate per iteration (per job, as the jobs use it);
* ``time_<exp>.png``: each iteration's wall time split into compute, mixing and the rest;
* ``scaling.png`` (when the experiments differ in the number of jobs and one has a single job):
  speed-up (training frames/s against the 1-job run) and scaling factor (speed-up / jobs)
  against the number of jobs, like Fig. 2 of Su, Chen & Xu (2015), with that paper's points;
* ``accuracy_vs_ranks.png`` (MPI experiments at two or more numbers of ranks): final CV frame
  accuracy against the number of ranks, one line per optimizer and mixing, with the accuracy of
  the 1-rank run of the same optimizer as a reference line (the papers' "no loss" claim).
"""

from __future__ import annotations

import os

from nnetavg.account import account_table, experiment_account
from nnetavg.experiment import Experiment

# Su, Chen & Xu 2015 (seed 001), Sec. 5.2 and Table 3: speed-up on K20 GPUs, Switchboard 300 h,
# 440-6x2048-8806 DNN, minibatch 1024, averaging every 10 minibatches.
PAPER_SPEEDUP = {16: 9.32, 32: 17.0}
PAPER_TABLE1_WER = {1: 14.7, 8: 15.1, 16: 15.1, 32: 15.2}  # SWB WER (%) against GPUs, Table 1


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(exps: list[Experiment], png: str) -> None:
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for e in exps:
        xs = [0] + [it.frames_seen for it in e.iterations] if e.initial_cv else [it.frames_seen for it in e.iterations]
        ce = ([e.initial_cv[0]] if e.initial_cv else []) + [it.cv_cross_entropy for it in e.iterations]
        acc = ([e.initial_cv[1]] if e.initial_cv else []) + [it.cv_frame_accuracy for it in e.iterations]
        ax1.plot(xs, ce, "o-", label=f"{e.name}: CV, averaged ({e.num_jobs} jobs)")
        ax2.plot(xs, acc, "o-", label=f"{e.name}: CV, averaged")
        if len(exps) == 1 and e.kind == "files":
            for j in range(e.num_jobs):
                pts = [(it.frames_seen, it.jobs[j]) for it in e.iterations if j < len(it.jobs)]
                ax1.plot([p[0] for p in pts], [p[1].cross_entropy for p in pts], lw=0.8, alpha=0.6,
                         label="train, per job" if j == 0 else None, color="gray")
                ax2.plot([p[0] for p in pts], [p[1].frame_accuracy for p in pts], lw=0.8, alpha=0.6,
                         label="train, per job" if j == 0 else None, color="gray")
    ax1.set(xlabel="training frames seen (all jobs)", ylabel="cross-entropy (nats/frame)", title="Objective")
    ax2.set(xlabel="training frames seen (all jobs)", ylabel="frame accuracy", title="Frame accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def plot_learning_rate(exps: list[Experiment], png: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for e in exps:
        ax.plot([it.index for it in e.iterations], [it.learn_rate for it in e.iterations], "o-", label=e.name)
    ax.set(xlabel="iteration / epoch", ylabel="learning rate (per job)", yscale="log", title="Learning rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def plot_time(e: Experiment, png: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    idx = [it.index for it in e.iterations]
    comp = [it.compute_seconds for it in e.iterations]
    mix = [it.mix_seconds for it in e.iterations]
    other = [it.other_seconds for it in e.iterations]
    ax.bar(idx, comp, label="compute")
    ax.bar(idx, mix, bottom=comp, label="mixing / averaging")
    ax.bar(idx, other, bottom=[a + b for a, b in zip(comp, mix)], label="I/O, start-up, CV")
    ax.set(xlabel="iteration / epoch", ylabel="seconds", title=f"{e.name}: time per iteration ({e.num_jobs} jobs)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def speedups(exps: list[Experiment]) -> list[tuple[int, float, str]]:
    """(jobs, speed-up, name) for every experiment that has a 1-job experiment with the same
    training command (SGD against SGD, NG-SGD against NG-SGD) to compare with; the fastest such
    1-job run is the reference."""
    out = []
    for e in exps:
        singles = [s.frames_per_second for s in exps
                   if s.num_jobs == 1 and s.kind == e.kind and s.optimizer == e.optimizer]
        if singles:
            out.append((e.num_jobs, e.frames_per_second / max(singles), e.name))
    return sorted(out)


def plot_scaling(exps: list[Experiment], png: str) -> bool:
    pts = speedups(exps)
    if len({n for n, _, _ in pts}) < 2:
        return False
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    top = max(max(n for n, _, _ in pts), max(PAPER_SPEEDUP))
    ax1.plot([1, top], [1, top], "k:", lw=0.8, label="linear")
    ax1.plot([n for n, _, _ in pts], [s for _, s, _ in pts], "o", label="nnetavg (this machine)")
    ax1.plot(list(PAPER_SPEEDUP), list(PAPER_SPEEDUP.values()), "s--", label="Su et al. 2015 (K20 GPUs)")
    ax2.plot([n for n, _, _ in pts], [s / n for n, s, _ in pts], "o", label="nnetavg (this machine)")
    ax2.plot(list(PAPER_SPEEDUP), [s / n for n, s in PAPER_SPEEDUP.items()], "s--", label="Su et al. 2015")
    ax1.set(xlabel="number of jobs", ylabel="speed-up (training frames/s vs 1 job)", xscale="log", yscale="log",
            title="Speed-up")
    ax2.set(xlabel="number of jobs", ylabel="scaling factor (speed-up / jobs)", xscale="log", ylim=(0, 1.1),
            title="Scaling factor")
    return _save(plt, fig, (ax1, ax2), png)


def accuracy_by_ranks(exps: list[Experiment]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(optimizer, mixing) -> sorted (ranks, final CV frame accuracy) of the MPI experiments; a
    1-rank run (no mixing takes place) belongs to every mixing of its optimizer."""
    groups: dict[tuple[str, str], list[tuple[int, float]]] = {}
    single = {e.optimizer: e.final.cv_frame_accuracy for e in exps if e.kind == "mpi" and e.num_jobs == 1}
    for e in exps:
        if e.kind == "mpi" and e.num_jobs > 1:
            groups.setdefault((e.optimizer, e.mixing), []).append((e.num_jobs, e.final.cv_frame_accuracy))
    for (opt, _), pts in groups.items():
        if opt in single:
            pts.append((1, single[opt]))
        pts.sort()
    return groups


def plot_accuracy_vs_ranks(exps: list[Experiment], png: str) -> bool:
    """Final CV frame accuracy against ranks per (optimizer, mixing); False when nothing to draw."""
    groups = accuracy_by_ranks(exps)
    if not groups or len({n for pts in groups.values() for n, _ in pts}) < 2:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (opt, mix), pts in sorted(groups.items()):
        ax.plot([n for n, _ in pts], [100 * a for _, a in pts], "o-" if opt == "ngsgd" else "s--",
                label=f"{opt}, {mix}")
    for e in exps:
        if e.kind == "mpi" and e.num_jobs == 1:
            ax.axhline(100 * e.final.cv_frame_accuracy, color="gray", lw=0.8, ls=":")
    ax.set(xlabel="MPI ranks", ylabel="final CV frame accuracy (%)", xscale="log",
           title="Accuracy against ranks (same epochs); dotted: 1 rank")
    ax.set_xticks(sorted({n for pts in groups.values() for n, _ in pts}))
    ax.get_xaxis().set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
    ax.get_xaxis().set_minor_formatter(plt.matplotlib.ticker.NullFormatter())
    return _save(plt, fig, (ax,), png)


def _save(plt, fig, axes, png: str) -> bool:
    """Grid and legend on every axis, then the PNG; True (drawn)."""
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return True


def summary_markdown(exps: list[Experiment], images: list[str], out_dir: str) -> str:
    lines = ["| experiment | layout | jobs | iterations | frames | final model | final CV cross-entropy "
             "| final CV frame acc. | last iteration CV frame acc. | wall s | frames/s | mixing share |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for e in exps:
        f, last = e.final, e.iterations[-1]
        what = e.final_model[2] if e.final_model and e.final_model[2] else "last iteration"
        lines.append(f"| {e.name} | {e.kind} | {e.num_jobs} | {len(e.iterations)} | {e.frames} | {what} | "
                     f"{f.cv_cross_entropy:.4f} | {100 * f.cv_frame_accuracy:.2f}% | {100 * last.cv_frame_accuracy:.2f}% | "
                     f"{e.wall_seconds:.1f} | {e.frames_per_second:.0f} | {100 * e.mix_fraction:.1f}% |")
    pts = speedups(exps)
    if len({n for n, _, _ in pts}) >= 2:
        lines += ["", "| jobs | speed-up (ours) | scaling factor (ours) | paper's speed-up (Su et al. 2015) |",
                  "|---:|---:|---:|---:|"]
        for n, s, name in pts:
            paper = f"{PAPER_SPEEDUP[n]:.2f}" if n in PAPER_SPEEDUP else "-"
            lines.append(f"| {n} ({name}) | {s:.2f} | {s / n:.2f} | {paper} |")
        lines.append(f"| 16 / 32 | | | {PAPER_SPEEDUP[16]} / {PAPER_SPEEDUP[32]} (scaling {PAPER_SPEEDUP[16] / 16:.2f} / "
                     f"{PAPER_SPEEDUP[32] / 32:.2f}) |")
    for e in exps:
        acc = experiment_account(e.path)
        if acc is not None:
            lines += ["", f"Where the wall time of `{e.name}` went (its step's log/timeline and the jobs' logs):", "",
                      account_table(acc).rstrip("\n")]
    lines += ["", *[f"![{os.path.splitext(os.path.basename(p))[0]}]({os.path.relpath(p, out_dir)})" for p in images]]
    return "\n".join(lines) + "\n"


def write_report(exps: list[Experiment], out_dir: str) -> tuple[str, list[str]]:
    """Draws the plots into ``out_dir`` and writes ``summary.md``; returns (summary path, PNGs)."""
    os.makedirs(out_dir, exist_ok=True)
    images = [os.path.join(out_dir, "curves.png"), os.path.join(out_dir, "learning_rate.png")]
    plot_curves(exps, images[0])
    plot_learning_rate(exps, images[1])
    for e in exps:
        images.append(os.path.join(out_dir, f"time_{e.name}.png"))
        plot_time(e, images[-1])
    scaling = os.path.join(out_dir, "scaling.png")
    if plot_scaling(exps, scaling):
        images.append(scaling)
    by_ranks = os.path.join(out_dir, "accuracy_vs_ranks.png")
    if plot_accuracy_vs_ranks(exps, by_ranks):
        images.append(by_ranks)
    summary = os.path.join(out_dir, "summary.md")
    with open(summary, "w") as f:
        f.write("# Training report\n\nRead from the logs of: " + ", ".join(f"`{e.path}`" for e in exps) + "\n\n")
        f.write(summary_markdown(exps, images, out_dir))
    return summary, images


BEGIN, END = "<!-- nnet-report:begin -->", "<!-- nnet-report:end -->"


def update_results(results_md: str, exps: list[Experiment], images: list[str], command: str) -> None:
    """Replaces (or appends) the generated block of a recipe's RESULTS.md."""
    block = (f"{BEGIN}\n<!-- generated by: {command} -- do not edit by hand -->\n\n"
             + summary_markdown(exps, images, os.path.dirname(os.path.abspath(results_md))) + END)
    text = open(results_md).read() if os.path.exists(results_md) else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + "## Training report (from the logs)\n\n" + block + "\n"
    tmp = results_md + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, results_md)

#!/usr/bin/env python3
"""Plots a sagan-train run's metrics.csv: losses, D outputs, attention gammas and, when the run
was trained with --fd-every, the Frechet distance.

Usage: python3 tools/plot_run.py RUN_DIR [-o out.png] [--smooth N]
Needs matplotlib (pip install matplotlib); the engine itself does not.
"""
import argparse
import csv
import math
import os
import sys

REQUIRED = ["step", "loss_d", "loss_g", "d_real", "d_fake"]  # written by every sagan-train run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("run_dir")
    ap.add_argument("-o", "--out", default=None, help="PNG to write (default RUN_DIR/curves.png)")
    ap.add_argument("--smooth", type=int, default=1,
                    help="moving-average window in rows (>= 1; non-finite values are left out of each window)")
    args = ap.parse_args()
    if args.smooth < 1:
        sys.exit(f"plot_run: --smooth must be >= 1, got {args.smooth}")
    if not os.path.isdir(args.run_dir):
        sys.exit(f"plot_run: {args.run_dir}: no such run directory")
    path = os.path.join(args.run_dir, "metrics.csv")
    if not os.path.exists(path):
        sys.exit(f"plot_run: {path}: no such file (no row logged yet?)")
    out = args.out or os.path.join(args.run_dir, "curves.png")
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        sys.exit(f"plot_run: -o {out}: the folder {out_dir} does not exist")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"plot_run: {path}: no rows")
    missing = [c for c in REQUIRED if c not in rows[0]]
    if missing:
        sys.exit(f"plot_run: {path}: no column {', '.join(missing)} (not a sagan-train metrics.csv?)")
    try:
        import matplotlib
    except ImportError:
        sys.exit("plot_run: needs matplotlib (pip install matplotlib, or apt-get install python3-matplotlib)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def col(name):
        try:
            return [float(r[name]) for r in rows]
        except ValueError as e:
            sys.exit(f"plot_run: {path}: column {name}: {e}")

    def smooth(v):
        # The mean of the finite values in each window of the last --smooth
        # rows (nan where there are none): a row of a skipped non-finite
        # step (--on-nan skip) must not blank the curve from there on.
        n = args.smooth
        out = []
        for i in range(len(v)):
            window = [x for x in v[max(0, i - n + 1):i + 1] if math.isfinite(x)]
            out.append(sum(window) / len(window) if window else math.nan)
        return out

    step = col("step")
    gammas = [c for c in rows[0].keys() if c.startswith("gamma/")]
    fd = [(float(r["step"]), float(r["fd"])) for r in rows if r.get("fd")]  # blank between measurements
    fig, ax = plt.subplots(1, 4 if fd else 3, figsize=(20 if fd else 15, 4))
    ax[0].plot(step, smooth(col("loss_d")), label="loss D")
    ax[0].plot(step, smooth(col("loss_g")), label="loss G")
    ax[0].set_title("hinge losses")
    ax[1].plot(step, smooth(col("d_real")), label="mean D(x)")
    ax[1].plot(step, smooth(col("d_fake")), label="mean D(G(z))")
    ax[1].set_title("discriminator outputs")
    for g in gammas:
        ax[2].plot(step, col(g), label=g[len("gamma/"):])
    ax[2].set_title("attention gamma")
    if fd:
        ax[3].plot([s for s, _ in fd], [v for _, v in fd], "o-", label="FD (EMA G)")
        ax[3].set_yscale("log")
        ax[3].set_title("Frechet distance")
    for a in ax:
        a.set_xlabel("generator step")
        a.legend()
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"plot_run: wrote {out}")


if __name__ == "__main__":
    main()

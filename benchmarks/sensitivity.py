"""Sobol global sensitivity of the immune-reset model (issue 11): which parameters the data inform.

Run: ``.venv/bin/python benchmarks/sensitivity.py [--n-base 1024] [--out sobol.csv]``

Prints the total-order indices ST (rows: parameters, columns: observable endpoints), their
largest 95 % bootstrap half-width per endpoint and the per-parameter verdict of
:func:`immunoreset.model.sensitivity.identifiability`, as Markdown for ``docs/model.md``.
"""

from __future__ import annotations

import argparse
import sys
import time

from immunoreset.model.sensitivity import identifiability, sobol_indices


def _markdown(df, index=True) -> str:
    """A DataFrame as a Markdown table (no tabulate dependency)."""
    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for key, row in df.iterrows():
        vals = ([str(key)] if index else []) + [
            f"{v:.2f}" if isinstance(v, float) else str(v) for v in row
        ]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-base", type=int, default=1024)
    ap.add_argument("--spread", type=float, default=2.0)
    ap.add_argument("--out", default=None, help="CSV of all indices")
    args = ap.parse_args()
    t = time.perf_counter()
    idx = sobol_indices(n_base=args.n_base, spread=args.spread)
    took = time.perf_counter() - t
    if args.out:
        idx.to_csv(args.out, index=False)
    st = idx.pivot(index="parameter", columns="output", values="ST").clip(lower=0.0)
    st = st.loc[list(dict.fromkeys(idx["parameter"])), list(dict.fromkeys(idx["output"]))]
    print(f"n_base {args.n_base}, spread ×/÷ {args.spread:g}, {len(idx)} indices, {took:.1f} s\n")
    print(_markdown(st))
    print("\nlargest ST 95 % half-width per output:")
    print(_markdown(idx.groupby("output", sort=False)["ST_conf"].max().to_frame()))
    print()
    print(_markdown(identifiability(idx), index=False))


if __name__ == "__main__":
    sys.exit(main())

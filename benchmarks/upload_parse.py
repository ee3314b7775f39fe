"""CSV upload parsing: the vectorised reader against the csv-module reader it replaced.

Writes binned CSVs of 17 MB and 49.5 MB (two units, two variables, 17-digit floats), then
times in this process: the csv-module reader (the loader's code before the vectorised reader,
kept here as the reference), ``read_csv_columns`` alone, and the whole ``load_csv`` (columns to a
validated Session). Median of ``--repeats`` runs.

    PYTHONPATH=. .venv/bin/python benchmarks/upload_parse.py
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import time

import numpy as np

from glm_core.csv_columns import read_csv_columns
from glm_core.loaders import load_csv


def binned_csv(n_rows: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(size=n_rows))
    hd = rng.uniform(-np.pi, np.pi, n_rows)
    a, b = rng.poisson(0.3, n_rows), rng.poisson(1.0, n_rows)
    lines = ['bin_width,count:a,count:b,var:x[cm],"var:hd[rad,circular]"']
    lines += [f"{0.02 if i == 0 else ''},{ai},{bi},{float(xi)!r},{float(hi)!r}"
              for i, (ai, bi, xi, hi) in enumerate(zip(a, b, x, hd))]
    return ("\n".join(lines) + "\n").encode()


def csv_module_columns(data: bytes) -> dict[str, np.ndarray]:
    """The previous reader: csv.reader rows, then float() per cell (blank -> NaN)."""
    lines = io.StringIO(data.decode("utf-8-sig"), newline="")
    rows = [r for r in csv.reader(lines) if any(c.strip() for c in r)]
    header = [h.strip() for h in rows[0]]
    cells = {h: [r[j].strip() for r in rows[1:]] for j, h in enumerate(header)}
    return {h: np.array([c or "nan" for c in v], dtype=float) for h, v in cells.items()}


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| file | rows | csv module (s) | read_csv_columns (s) | load_csv (s) | speed-up |")
    print("| --- | --- | --- | --- | --- | --- |")
    row_bytes = len(binned_csv(10_000)) / 10_000
    for target_mb in (17, 49.5):  # uploads are limited to 50 MB
        n_rows = int(target_mb * 2**20 / row_bytes)
        data = binned_csv(n_rows)
        reference = csv_module_columns(data)
        fast = read_csv_columns(data, "bench")
        for name, values in reference.items():  # same numbers, else the timing means nothing
            np.testing.assert_array_equal(fast[name], values)
        old = median_seconds(lambda: csv_module_columns(data), args.repeats)
        new = median_seconds(lambda: read_csv_columns(data, "bench"), args.repeats)
        whole = median_seconds(lambda: load_csv(data), args.repeats)
        print(f"| {len(data) / 2**20:.1f} MB | {n_rows:,} | {old:.2f} | {new:.2f} | {whole:.2f} "
              f"| {old / new:.1f}x |")


if __name__ == "__main__":
    main()

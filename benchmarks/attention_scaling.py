"""Measure how the cost of causal self-attention grows with the sequence length T.

For T = 64, 128, 256, 512, 1024 it times a forward and backward pass of `CausalSelfAttention`
(embedding 64, 4 heads, batch 1, float32) and records the peak memory NumPy allocates during it
(with tracemalloc, which NumPy reports its array buffers to).

    .venv/bin/python benchmarks/attention_scaling.py [--repeats 5] [--lengths 64 128 256 512 1024]

The appendix of the book imports `measure` from this file and plots the same table.
"""
import argparse, statistics, time, tracemalloc

import numpy as np

from causal_attention.attention import CausalSelfAttention
from causal_attention.layers import manual_seed
from causal_attention.tensor import Tensor

LENGTHS = (64, 128, 256, 512, 1024)


def measure(lengths=LENGTHS, embedding_size=64, n_heads=4, batch_size=1, repeats=5, seed=0):
    "A list of dicts: T, median forward+backward seconds, peak MiB allocated by NumPy."
    manual_seed(seed)
    layer = CausalSelfAttention(embedding_size, max(lengths), n_heads)
    rng = np.random.default_rng(seed)
    rows = []
    for T in lengths:
        x = Tensor(rng.standard_normal((batch_size, T, embedding_size)))
        def step():
            layer.zero_grad(); x.grad = None
            layer(x).sum().backward()
        step()                                           # warm up
        times = []
        for _ in range(repeats):
            start = time.perf_counter(); step(); times.append(time.perf_counter() - start)
        tracemalloc.start()
        step()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append(dict(T=T, seconds=statistics.median(times), peak_mib=peak / 2**20))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--lengths', type=int, nargs='+', default=list(LENGTHS))
    args = parser.parse_args()
    rows = measure(args.lengths, repeats=args.repeats)
    print(f"{'T':>6} {'fwd+bwd ms':>11} {'peak MiB':>9} {'ms / T^2 x 1e3':>15}")
    for r in rows:
        print(f"{r['T']:>6} {r['seconds'] * 1e3:>11.2f} {r['peak_mib']:>9.1f} {r['seconds'] * 1e6 / r['T'] ** 2:>15.3f}")


if __name__ == '__main__':
    main()

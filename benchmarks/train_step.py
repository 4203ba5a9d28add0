"""Time one training step of the book's GPT in NumPy and, where PyTorch is installed, in PyTorch.

A step is: forward pass, cross-entropy, backward pass, AdamW update. The model is the one the issue
fixes: vocabulary 1000, context 32, embedding 64, 4 heads, 2 layers, batch 16, float32.

    .venv/bin/python benchmarks/train_step.py [--steps 50] [--warmup 10] [--repeats 5] [--no-malloc-tuning]

Prints milliseconds per step and tokens per second as the median over `repeats` runs of `steps`
steps each, and the NumPy/PyTorch ratio. Before either model is built it calls
`keep_freed_memory()` (chapter 6), which tells glibc's malloc to keep freed memory instead of
returning it to the system, so that both NumPy and PyTorch run with the same allocator settings;
`--no-malloc-tuning` measures with glibc's defaults instead. OpenBLAS's thread count (NumPy's
matrix products) follows OPENBLAS_NUM_THREADS, which the script prints; PyTorch uses its own
thread pool.
"""
import argparse, os, platform, statistics, time

import numpy as np

from causal_attention.gpt import GPT, GPTConfig
from causal_attention.layers import manual_seed
from causal_attention.train import AdamW, cross_entropy, keep_freed_memory

CONFIG = dict(vocabulary_size=1000, context_size=32, embedding_size=64, n_heads=4, n_layers=2)
BATCH = 16


def batches(seed=0):
    rng = np.random.default_rng(seed)
    V, T = CONFIG['vocabulary_size'], CONFIG['context_size']
    return rng.integers(0, V, (BATCH, T)), rng.integers(0, V, (BATCH, T))


def time_steps(step, steps, warmup, repeats):
    "Median over `repeats` of the mean time of `steps` calls of `step`, after `warmup` calls."
    for _ in range(warmup): step()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps): step()
        runs.append((time.perf_counter() - start) / steps)
    return statistics.median(runs)


def numpy_step():
    manual_seed(0)
    model = GPT(GPTConfig(**CONFIG))
    optimizer = AdamW(model.parameters(), lr=1e-3)
    x, y = batches()
    def step():
        optimizer.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    return step


def torch_step():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.manual_seed(0)
    V, T, C, H, L = (CONFIG[k] for k in ('vocabulary_size', 'context_size', 'embedding_size', 'n_heads', 'n_layers'))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.query, self.key, self.value, self.output = (nn.Linear(C, C) for _ in range(4))
            self.feed_forward = nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(approximate='tanh'), nn.Linear(4 * C, C))
            self.register_buffer('mask', torch.tril(torch.ones(T, T, dtype=torch.bool)))
        def forward(self, x):
            B, T_, _ = x.shape
            h = self.norm1(x)
            q, k, v = (f(h).view(B, T_, H, C // H).transpose(1, 2) for f in (self.query, self.key, self.value))
            scores = (q @ k.transpose(-2, -1)) * (C // H) ** -0.5
            weights = scores.masked_fill(~self.mask[:T_, :T_], float('-inf')).softmax(-1)
            x = x + self.output((weights @ v).transpose(1, 2).reshape(B, T_, C))
            return x + self.feed_forward(self.norm2(x))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding, self.position_embedding = nn.Embedding(V, C), nn.Embedding(T, C)
            self.blocks = nn.ModuleList(Block() for _ in range(L))
            self.norm, self.head = nn.LayerNorm(C), nn.Linear(C, V, bias=False)
        def forward(self, ids):
            x = self.token_embedding(ids) + self.position_embedding(torch.arange(ids.shape[-1]))
            for block in self.blocks: x = block(x)
            return self.head(self.norm(x))

    model = TorchGPT()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = (torch.from_numpy(a) for a in batches())
    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x).view(-1, V), y.view(-1))
        loss.backward()
        optimizer.step()
    return step, torch.get_num_threads(), torch.__version__


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=50)
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--no-malloc-tuning', action='store_true',
                        help="keep glibc's default malloc thresholds (do not call keep_freed_memory)")
    args = parser.parse_args()
    # before any model exists, so that NumPy and PyTorch share the same allocator settings
    tuned = False if args.no_malloc_tuning else keep_freed_memory()
    tokens = BATCH * CONFIG['context_size']
    print(f"model {CONFIG}, batch {BATCH}, float32; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, numpy {np.__version__}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}")
    print("malloc: " + ("keep_freed_memory() applied (glibc keeps freed memory)" if tuned else
                        "glibc defaults (--no-malloc-tuning)" if args.no_malloc_tuning else
                        "defaults (keep_freed_memory() found no glibc to tune)"))
    seconds = time_steps(numpy_step(), args.steps, args.warmup, args.repeats)
    print(f"numpy   {seconds * 1e3:7.2f} ms/step  {tokens / seconds:9.0f} tokens/s")
    try: step, threads, version = torch_step()
    except ImportError:
        print("torch   not installed: no comparison (pip install torch==2.13.0)")
        return
    torch_seconds = time_steps(step, args.steps, args.warmup, args.repeats)
    print(f"torch   {torch_seconds * 1e3:7.2f} ms/step  {tokens / torch_seconds:9.0f} tokens/s"
          f"  (torch {version}, {threads} threads, eager mode)")
    print(f"ratio   numpy/torch = {seconds / torch_seconds:.2f}")


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""PyTorch side of `npm run bench -- ops`: times the same op cases as bench/ops.ts, one JSON line each.

Run by bench/ops.ts with Debian's torch (/usr/bin/python3) and the OpenMP OpenBLAS, as
../shared/bench/reference/README.md prescribes. Reads the case list as JSON on stdin.
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def timeit(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def gemm_case(c):
    m, k, n = c["m"], c["k"], c["n"]
    a = torch.randn(m, k)
    b = torch.randn(n, k)  # y = x W^T, the linear layout
    out = torch.empty(m, n)
    return lambda: torch.matmul(a, b.t(), out=out)


def attention_case(c, fused):
    b, h, t, d = c["batch"], c["heads"], c["t"], c["headDim"]
    q = torch.randn(b, h, t, d, requires_grad=True)
    k = torch.randn(b, h, t, d, requires_grad=True)
    v = torch.randn(b, h, t, d, requires_grad=True)
    g = torch.randn(b, h, t, d)
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    scale = 1.0 / d ** 0.5

    def run():
        s = (q @ k.transpose(-1, -2)) * scale
        s = s.masked_fill(~mask, float("-inf"))
        p = torch.softmax(s, dim=-1)
        y = p @ v
        y.backward(g)

    return run


def layernorm_case(c, fused):
    rows, cols = c["rows"], c["cols"]
    x = torch.randn(rows, cols, requires_grad=True)
    w = torch.randn(cols, requires_grad=True)
    bias = torch.randn(cols, requires_grad=True)
    g = torch.randn(rows, cols)

    def run():
        if fused:
            y = F.layer_norm(x, (cols,), w, bias, 1e-5)
        else:
            mu = x.mean(-1, keepdim=True)
            var = ((x - mu) ** 2).mean(-1, keepdim=True)
            y = (x - mu) / torch.sqrt(var + 1e-5) * w + bias
        y.backward(g)

    return run


def xent_case(c, fused):
    rows, v = c["rows"], c["vocab"]
    x = torch.randn(rows, v, requires_grad=True)
    t = torch.randint(0, v, (rows,))

    def run():
        if fused:
            loss = F.cross_entropy(x, t)
        else:
            loss = -(torch.log_softmax(x, -1).gather(1, t[:, None])).mean()
        loss.backward()

    return run


def main():
    cases = json.load(sys.stdin)
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
    torch.set_num_threads(threads)
    try:
        import ctypes
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(threads)
    except OSError:
        pass
    torch.manual_seed(0)
    for c in cases:
        kind = c["kind"]
        results = {}
        variants = ["unfused", "fused"] if kind in ("layerNorm", "crossEntropy") else ["default"]
        for variant in variants:
            fused = variant == "fused"
            if kind == "gemm":
                fn = gemm_case(c)
            elif kind == "attention":
                fn = attention_case(c, fused)
            elif kind == "layerNorm":
                fn = layernorm_case(c, fused)
            else:
                fn = xent_case(c, fused)
            times = timeit(fn, c["repeats"])
            results[variant] = {"median_s": statistics.median(times), "min_s": min(times)}
        print(json.dumps({"case": c["name"], "torch": results, "torch_version": torch.__version__, "threads": threads}), flush=True)


if __name__ == "__main__":
    main()

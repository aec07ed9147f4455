#!/usr/bin/env python3
"""PyTorch side of `npm run bench -- models` (generate): greedy GPT-2 generation with a KV cache.

A compact GPT-2 forward in plain torch, as transformers' GPT2LMHeadModel computes it in eval mode
(eager attention; past keys/values concatenated per layer, as DynamicCache does; logits of the last
position only, as generate asks with logits_to_keep=1), with the weights of the SAME safetensors file
Loom loads (parsed here: 8-byte little-endian header length, JSON header, raw data).
Pieces shared with the model fixtures (gelu_new, conv1d, heads, merge) come from scripts/hf_reference.py.

stdin: {"checkpoint": dir, "prompt": [ids], "max_new_tokens": n, "loom_tokens": [ids] (optional)}.
stdout: one JSON line: tokens/s of the whole call and of the decode phase, tokens, tokens_match.
Run by bench/models.ts with Debian's torch and the OpenMP OpenBLAS (bench/util.ts runTorch).
"""
import json
import os
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts'))
from hf_reference import conv1d, gelu_new, heads, merge  # noqa: E402

_DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'I64': torch.int64, 'I32': torch.int32}


def load_safetensors(path):
    """{name: float32 tensor}, one tensor read at a time."""
    out = {}
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        for name, info in header.items():
            if name == '__metadata__':
                continue
            start, end = info['data_offsets']
            f.seek(base + start)
            buf = bytearray(f.read(end - start))
            t = torch.frombuffer(buf, dtype=_DTYPES[info['dtype']]).reshape(info['shape']) if end > start \
                else torch.empty(info['shape'], dtype=_DTYPES[info['dtype']])
            out[name] = t.float() if t.is_floating_point() else t
    return out


class GPT2:
    def __init__(self, p, cfg):
        self.p, self.cfg = p, cfg
        self.E, self.H = cfg['n_embd'], cfg['n_head']
        self.D, self.eps = self.E // self.H, cfg['layer_norm_epsilon']
        n = cfg['n_positions']
        self.bias = torch.tril(torch.ones((n, n), dtype=torch.bool)).view(1, 1, n, n)  # GPT2Attention's buffer
        self.min = torch.full([], torch.finfo(torch.float32).min)
        self.scale = torch.full([], self.D ** 0.5)
        pre = 'transformer.' if 'transformer.wte.weight' in p else ''
        self.L = [f'{pre}h.{i}.' for i in range(cfg['n_layer'])]
        self.wte, self.wpe = p[pre + 'wte.weight'], p[pre + 'wpe.weight']
        self.ln_f = (p[pre + 'ln_f.weight'], p[pre + 'ln_f.bias'])

    def forward(self, ids, past):
        """ids [B, T]; past: list of (k, v) [B, H, S, D] or None. Returns last-position logits [B, V], new past."""
        p, E, H, D, eps = self.p, self.E, self.H, self.D, self.eps
        B, T = ids.shape
        S0 = past[0][0].shape[-2] if past else 0
        pos = torch.arange(S0, S0 + T).unsqueeze(0)
        h = self.wte[ids] + self.wpe[pos]
        presents = []
        for i, L in enumerate(self.L):
            x = F.layer_norm(h, (E,), p[L + 'ln_1.weight'], p[L + 'ln_1.bias'], eps)
            q, k, v = conv1d(x, p[L + 'attn.c_attn.weight'], p[L + 'attn.c_attn.bias']).split(E, dim=2)
            q, k, v = heads(q, H, D), heads(k, H, D), heads(v, H, D)
            if past:
                k = torch.cat((past[i][0], k), dim=-2)
                v = torch.cat((past[i][1], v), dim=-2)
            presents.append((k, v))
            S = k.shape[-2]
            w = torch.matmul(q, k.transpose(-1, -2)) / self.scale
            w = torch.where(self.bias[:, :, S - T:S, :S], w, self.min)
            a = merge(torch.matmul(F.softmax(w, dim=-1), v))
            h = h + conv1d(a, p[L + 'attn.c_proj.weight'], p[L + 'attn.c_proj.bias'])
            x = F.layer_norm(h, (E,), p[L + 'ln_2.weight'], p[L + 'ln_2.bias'], eps)
            h = h + conv1d(gelu_new(conv1d(x, p[L + 'mlp.c_fc.weight'], p[L + 'mlp.c_fc.bias'])), p[L + 'mlp.c_proj.weight'], p[L + 'mlp.c_proj.bias'])
        h = F.layer_norm(h[:, -1:], (E,), self.ln_f[0], self.ln_f[1], eps)
        return F.linear(h, self.wte)[:, -1], presents

    def generate(self, prompt, max_new):
        """Greedy; returns (tokens, per-step seconds)."""
        ids = torch.tensor([prompt])
        past, tokens, times = None, [], []
        for _ in range(max_new):
            t0 = time.perf_counter()
            logits, past = self.forward(ids, past)
            nxt = int(torch.argmax(logits, dim=-1)[0])
            times.append(time.perf_counter() - t0)
            tokens.append(nxt)
            ids = torch.tensor([[nxt]])
        return tokens, times


def main():
    req = json.load(sys.stdin)
    threads = int(sys.argv[sys.argv.index('--threads') + 1]) if '--threads' in sys.argv else 2
    torch.set_num_threads(threads)
    try:
        import ctypes
        ctypes.CDLL('libopenblas.so.0').openblas_set_num_threads(threads)
    except (OSError, AttributeError):
        pass
    d = req['checkpoint']
    with open(os.path.join(d, 'config.json')) as f:
        cfg = json.load(f)
    model = GPT2(load_safetensors(os.path.join(d, 'model.safetensors')), cfg)
    prompt, n = req['prompt'], req['max_new_tokens']
    with torch.no_grad():
        first, _ = model.forward(torch.tensor([prompt]), None)
        model.generate(prompt, 4)  # warm-up, as the Loom side does
        t0 = time.perf_counter()
        tokens, times = model.generate(prompt, n)
        total = time.perf_counter() - t0
    decode = sum(times[1:])
    loom = req.get('loom_tokens')
    top5 = req.get('loom_top5')
    first = first[0]
    top5_ids_match = top5_rel = None
    if top5 is not None:
        ours = torch.topk(first, 5).indices.tolist()
        top5_ids_match = ours == top5['ids']
        theirs = torch.tensor(top5['values'], dtype=torch.float32)
        top5_rel = float((first[top5['ids']] - theirs).abs().max() / first.abs().max())
    print(json.dumps({
        'tokens': tokens,
        'tokens_per_s': len(tokens) / total,
        'decode_tokens_per_s': (len(tokens) - 1) / decode,
        'prefill_ms': times[0] * 1e3,
        'decode_ms_per_token': decode / (len(tokens) - 1) * 1e3,
        'tokens_match': None if loom is None else tokens[:16] == list(loom[:16]),
        'tokens_match_all': None if loom is None else tokens == list(loom[:len(tokens)]),
        'top5_ids_match': top5_ids_match,
        'top5_max_rel_diff': top5_rel,
        'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'cpu_s': (lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(resource.RUSAGE_SELF)),
        'torch_version': torch.__version__,
        'threads': torch.get_num_threads(),
    }), flush=True)


if __name__ == '__main__':
    main()

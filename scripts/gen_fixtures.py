#!/usr/bin/python3
"""PyTorch reference fixtures for Loom's op tests.

Writes test/fixtures/ops.json: for every case, the inputs, the forward output, a random upstream
gradient and the gradients of loss = sum(output * upstream) with respect to every input that has
requiresGrad (plus AdamW trajectories). The TypeScript tests compare Loom's kernels against these
values, so CI needs no Python.

Run from the repository root with Debian's Python (torch 1.13 and numpy are Debian packages, which
the `python3` first on PATH may not see):

    /usr/bin/python3 scripts/gen_fixtures.py

The output is deterministic: each case seeds torch from a hash of its name. Inputs are drawn in
float32 (so they are exactly representable in the engine), the reference is computed in float64,
and outputs/gradients are stored rounded to float32 (shortest repr that round-trips the float32).
AdamW is the exception: it runs torch.optim.AdamW in float32, because Loom must match torch's
float32 update.
"""

import json
import math
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_PATH = os.path.join(ROOT, 'test', 'fixtures', 'ops.json')

torch.set_num_threads(1)  # reductions in a fixed order, so reruns are bit-identical

CASES = []
NAMES = set()


# ---------------------------------------------------------------- helpers

def seed_for(name):
    torch.manual_seed(zlib.crc32(name.encode('utf-8')))


def f32_list(t):
    """Flat row-major list of float32-rounded values, each the shortest decimal that round-trips."""
    a = t.detach().to(torch.float32).contiguous().reshape(-1).numpy()
    if not np.all(np.isfinite(a)):
        raise ValueError('non-finite value in fixture')
    return [float(str(v)) for v in a]


def i32_list(t):
    return [int(v) for v in t.detach().reshape(-1).tolist()]


def randn(*shape):
    return torch.randn(tuple(shape), dtype=torch.float32)


def positive(*shape):
    """Positive float32 values in roughly [0.1, 3]."""
    return (torch.randn(tuple(shape), dtype=torch.float32).abs() + 0.1).to(torch.float32)


def away_from_zero(*shape):
    """float32 values with |x| in [0.5, ~3], random sign."""
    x = torch.randn(tuple(shape), dtype=torch.float32)
    return (torch.sign(x) * (x.abs() + 0.5)).to(torch.float32)


def no_ties(*shape):
    """float32 values, all distinct (so max has a unique argmax)."""
    while True:
        x = torch.randn(tuple(shape), dtype=torch.float32)
        if x.numel() == torch.unique(x).numel():
            return x


def add_case(name, op, params, inputs, fn):
    """inputs: list of (name, f32 or int tensor, requiresGrad). The tensor is created under the case's
    seed by the caller (a lambda), so pass a zero-arg callable returning that list.
    fn(*float64 tensors / int tensors) -> float64 output."""
    assert name not in NAMES, name
    NAMES.add(name)
    seed_for(name)
    inputs = inputs()
    args = []
    in_json = []
    for (nm, t, rg) in inputs:
        if t.dtype == torch.float32:
            x = t.detach().to(torch.float64)
            if rg:
                x.requires_grad_(True)
            in_json.append({'name': nm, 'shape': list(t.shape), 'dtype': 'f32', 'data': f32_list(t),
                            'requiresGrad': bool(rg)})
        else:
            assert not rg
            x = t.detach().to(torch.int64)
            in_json.append({'name': nm, 'shape': list(t.shape), 'dtype': 'i32', 'data': i32_list(t),
                            'requiresGrad': False})
        args.append(x)
    out = fn(*args)
    assert out.dtype == torch.float64, (name, out.dtype)
    up = torch.randn(tuple(out.shape), dtype=torch.float32)
    grads = {}
    rg_args = [(nm, a) for (nm, _, rg), a in zip(inputs, args) if rg]
    if rg_args:
        loss = (out * up.to(torch.float64)).sum()
        gs = torch.autograd.grad(loss, [a for _, a in rg_args], allow_unused=True)
        for (nm, a), g in zip(rg_args, gs):
            if g is None:
                g = torch.zeros_like(a)
            grads[nm] = f32_list(g)
    CASES.append({
        'name': name, 'op': op, 'params': params, 'inputs': in_json,
        'output': {'shape': list(out.shape), 'data': f32_list(out)},
        'upstream': {'shape': list(up.shape), 'data': f32_list(up)},
        'grads': grads,
    })


def sh(shape):
    return 'x'.join(str(s) for s in shape) if len(shape) else 'scalar'


# ---------------------------------------------------------------- elementwise binary

BINARY = {'add': torch.add, 'sub': torch.sub, 'mul': torch.mul, 'div': torch.div}
BINARY_SHAPES = [
    ('same shape', [3, 4], [3, 4]),
    ('scalar-shaped b', [2, 5], [1]),
    ('scalar-shaped a', [1], [4, 3]),
    ('row', [5], [3, 5]),
    ('col x row', [4, 1], [1, 6]),
    ('3-D broadcast', [2, 3, 4], [3, 1]),
    ('4-D broadcast', [2, 1, 3, 1], [1, 4, 1, 5]),
    ('length-1 axes', [1, 3, 1], [1, 3, 1]),
]
for op, f in BINARY.items():
    for desc, sa, sb in BINARY_SHAPES:
        def mk(sa=sa, sb=sb, op=op):
            return [('a', randn(*sa), True), ('b', (away_from_zero if op == 'div' else randn)(*sb), True)]
        add_case(f'{op} {desc} {sh(sa)} {sh(sb)}', op, {}, mk, f)
    # non-contiguous torch inputs (transposed views); only the values reach the fixture
    def mk_nc(op=op):
        a = randn(4, 3).t()
        b = (away_from_zero if op == 'div' else randn)(4, 3).t()
        assert not a.is_contiguous()
        return [('a', a, True), ('b', b, True)]
    add_case(f'{op} noncontig transposed 3x4 3x4', op, {}, mk_nc, f)


# ---------------------------------------------------------------- elementwise unary

def unary_cases(op, fn, variants, params=None):
    for desc, mk in variants:
        add_case(f'{op} {desc}', op, params or {}, lambda mk=mk: [('x', mk(), True)], fn)


std_variants = [
    ('3x4', lambda: randn(3, 4)),
    ('2x3x5', lambda: randn(2, 3, 5)),
    ('1x1', lambda: randn(1, 1)),
]
wide_variants = std_variants + [('wide x*8 4x6', lambda: (randn(4, 6) * 8).to(torch.float32))]
pos_variants = [
    ('positive 3x4', lambda: positive(3, 4)),
    ('positive 2x3x5', lambda: positive(2, 3, 5)),
    ('positive 1', lambda: positive(1)),
    ('small positive 7', lambda: (torch.rand(7) * 1e-3 + 1e-4).to(torch.float32)),
]

unary_cases('neg', torch.neg, std_variants)
unary_cases('exp', torch.exp, std_variants + [('wide x*5 4x6', lambda: (randn(4, 6) * 5).to(torch.float32))])
unary_cases('log', torch.log, pos_variants)
unary_cases('sqrt', torch.sqrt, pos_variants)
unary_cases('tanh', torch.tanh, wide_variants)
unary_cases('sigmoid', torch.sigmoid, wide_variants)
unary_cases('relu', torch.relu, std_variants + [('noncontig 5x4', lambda: randn(4, 5).t())])
unary_cases('silu', F.silu, wide_variants)
for approx in ['none', 'tanh']:
    for desc, mk in wide_variants:
        add_case(f'gelu {approx} {desc}', 'gelu', {'approximate': approx},
                 lambda mk=mk: [('x', mk(), True)], lambda x, a=approx: F.gelu(x, approximate=a))
for e, gen, desc in [(2, randn, '3x4'), (3, randn, '2x5'), (0.5, positive, 'positive 3x4'),
                     (-1, positive, 'positive 2x3x2'), (1.5, positive, 'positive 6')]:
    shape = {'3x4': (3, 4), '2x5': (2, 5), 'positive 3x4': (3, 4), 'positive 2x3x2': (2, 3, 2),
             'positive 6': (6,)}[desc]
    add_case(f'pow e={e} {desc}', 'pow', {'exponent': e},
             lambda gen=gen, shape=shape: [('x', gen(*shape), True)], lambda x, e=e: torch.pow(x, e))
for s, shape in [(2.5, (3, 4)), (-0.5, (2, 3, 2)), (0.0, (5,))]:
    add_case(f'scale s={s} {sh(shape)}', 'scale', {'s': s},
             lambda shape=shape: [('x', randn(*shape), True)], lambda x, s=s: x * s)


# ---------------------------------------------------------------- reductions

def reduce_fn(op, axes, keep):
    def fn(x):
        dims = tuple(range(x.dim())) if axes is None else tuple(axes)
        if op == 'sum':
            return torch.sum(x, dim=dims, keepdim=keep)
        if op == 'mean':
            return torch.mean(x, dim=dims, keepdim=keep)
        return torch.amax(x, dim=dims, keepdim=keep)
    return fn


REDUCE_CASES = [
    ([3, 4], [1], False),
    ([3, 4], [0], True),
    ([2, 3, 4], [-1], False),
    ([2, 3, 4, 5], [0, 2], False),       # non-adjacent
    ([2, 3, 4, 5], [-1, 1], True),       # negative + non-adjacent, keepDims
    ([3, 1, 4], [1], False),             # length-1 axis
    ([2, 3, 4], None, False),            # all -> []
    ([2, 1, 3], None, True),             # all, keepDims -> [1,1,1]
]
for op in ['sum', 'mean', 'max']:
    for shape, axes, keep in REDUCE_CASES:
        name = f'{op} {sh(shape)} axes={"all" if axes is None else axes} keepDims={keep}'
        gen = no_ties if op == 'max' else randn
        add_case(name, op, {'axes': axes, 'keepDims': keep},
                 lambda gen=gen, shape=shape: [('x', gen(*shape), True)], reduce_fn(op, axes, keep))


# ---------------------------------------------------------------- softmax / logSoftmax

SOFTMAX_CASES = [
    ('4x7 axis=-1', [4, 7], -1, 1.0),
    ('2x5x3 axis=1', [2, 5, 3], 1, 1.0),
    ('3x4 axis=0', [3, 4], 0, 1.0),
    ('large logits 3x6 axis=-1', [3, 6], -1, 1000.0),
    ('length-1 axis 3x1x4 axis=1', [3, 1, 4], 1, 1.0),
    ('1x9 axis=1', [1, 9], 1, 1.0),
]
for op, fn in [('softmax', F.softmax), ('logSoftmax', F.log_softmax)]:
    for desc, shape, axis, scale in SOFTMAX_CASES:
        add_case(f'{op} {desc}', op, {'axis': axis},
                 lambda shape=shape, scale=scale: [('x', (randn(*shape) * scale).to(torch.float32), True)],
                 lambda x, axis=axis: fn(x, dim=axis))


# ---------------------------------------------------------------- matmul

def matmul_fn(ta, tb):
    def fn(a, b):
        return torch.matmul(a.transpose(-1, -2) if ta else a, b.transpose(-1, -2) if tb else b)
    return fn


def mm_shape(batch, rows, cols, trans):
    return list(batch) + ([cols, rows] if trans else [rows, cols])


MATMUL_CASES = [
    # (desc, a batch, b batch, m, k, n, transA, transB)
    ('2-D', [], [], 3, 4, 5, False, False),
    ('2-D', [], [], 3, 4, 5, True, False),
    ('2-D', [], [], 3, 4, 5, False, True),
    ('2-D', [], [], 3, 4, 5, True, True),
    ('batched 3-D', [2], [2], 3, 4, 5, False, False),
    ('batched 3-D', [3], [3], 2, 5, 3, True, True),
    ('batched 3-D', [2], [2], 4, 3, 2, True, False),
    ('batched 3-D', [2], [2], 4, 3, 2, False, True),
    ('batch broadcast 4-D @ 2-D', [2, 3], [], 4, 5, 6, False, False),
    ('batch broadcast 2-D @ 3-D', [], [2], 3, 4, 5, False, False),
    ('batch broadcast 4-D @ 2-D', [2, 3], [], 4, 5, 6, True, True),
    ('size 1 m=n=1', [], [], 1, 7, 1, False, False),
    ('size 1 k=1', [], [], 4, 1, 3, False, True),
    ('size 1 all', [1], [1], 1, 1, 1, False, False),
    ('odd sizes', [], [], 5, 7, 3, True, False),
    ('larger 33x65x17', [], [], 33, 65, 17, False, False),
    ('larger 33x65x17', [], [], 33, 65, 17, False, True),
]
for desc, ba, bb, m, k, n, ta, tb in MATMUL_CASES:
    sa = mm_shape(ba, m, k, ta)
    sb = mm_shape(bb, k, n, tb)
    name = f'matmul {desc} {sh(sa)} @ {sh(sb)} transA={ta} transB={tb}'
    add_case(name, 'matmul', {'transA': ta, 'transB': tb},
             lambda sa=sa, sb=sb: [('a', randn(*sa), True), ('b', randn(*sb), True)], matmul_fn(ta, tb))


def mk_mm_noncontig():
    a = randn(4, 3).t()   # [3,4] transposed view
    b = randn(5, 4).t()   # [4,5]
    return [('a', a, True), ('b', b, True)]


add_case('matmul noncontig 3x4 @ 4x5 transA=False transB=False', 'matmul', {'transA': False, 'transB': False},
         mk_mm_noncontig, matmul_fn(False, False))


# ---------------------------------------------------------------- linear

LINEAR_CASES = [
    ('x 4x5 W 3x5 bias', [4, 5], 3, True),
    ('x 2x3x5 W 4x5 bias', [2, 3, 5], 4, True),
    ('x 3x6 W 2x6 no bias', [3, 6], 2, False),
    ('x 2x1x7 W 1x7 bias', [2, 1, 7], 1, True),
    ('x 1x16 W 9x16 bias', [1, 16], 9, True),
]
for desc, sx, nout, has_b in LINEAR_CASES:
    nin = sx[-1]

    def mk(sx=sx, nout=nout, nin=nin, has_b=has_b):
        ins = [('x', randn(*sx), True), ('weight', randn(nout, nin), True)]
        if has_b:
            ins.append(('bias', randn(nout), True))
        return ins
    add_case(f'linear {desc}', 'linear', {}, mk,
             (lambda x, w, b: F.linear(x, w, b)) if has_b else (lambda x, w: F.linear(x, w)))


# ---------------------------------------------------------------- layerNorm / rmsNorm

LN_CASES = [
    ('4x8 affine', [4, 8], True, 1.0, 0.0),
    ('2x3x16 affine', [2, 3, 16], True, 1.0, 0.0),
    ('3x10 no affine', [3, 10], False, 1.0, 0.0),
    ('offset x*2+3 4x64 affine', [4, 64], True, 2.0, 3.0),
    ('cols=1 2x1 affine', [2, 1], True, 1.0, 0.0),
]
for desc, shape, affine, mul, off in LN_CASES:
    c = shape[-1]

    def mk(shape=shape, affine=affine, mul=mul, off=off, c=c):
        ins = [('x', (randn(*shape) * mul + off).to(torch.float32), True)]
        if affine:
            ins += [('weight', randn(c), True), ('bias', randn(c), True)]
        return ins
    if affine:
        fn = (lambda x, w, b, c=c: F.layer_norm(x, (c,), w, b, 1e-5))
    else:
        fn = (lambda x, c=c: F.layer_norm(x, (c,), None, None, 1e-5))
    add_case(f'layerNorm {desc}', 'layerNorm', {'eps': 1e-5}, mk, fn)


def rms_norm(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


RMS_CASES = [('4x8', [4, 8]), ('2x3x16', [2, 3, 16]), ('1x64', [1, 64]), ('cols=1 3x1', [3, 1]),
             ('small values 2x8', [2, 8])]
for desc, shape in RMS_CASES:
    scale = 1e-3 if desc.startswith('small') else 1.0
    add_case(f'rmsNorm {desc}', 'rmsNorm', {'eps': 1e-6},
             lambda shape=shape, scale=scale: [('x', (randn(*shape) * scale).to(torch.float32), True),
                                               ('weight', randn(shape[-1]), True)],
             rms_norm)


# ---------------------------------------------------------------- embedding

EMB_CASES = [
    ('ids 6 table 7x3 repeats', [2, 5, 2, 0, 6, 2], [6], 7, 3),
    ('ids 2x4 table 10x6', None, [2, 4], 10, 6),
    ('ids 1 table 1x4', [0], [1], 1, 4),
    ('ids 3x1 table 5x8 all same', [4, 4, 4], [3, 1], 5, 8),
]
for desc, ids, ishape, vocab, dim in EMB_CASES:
    def mk(ids=ids, ishape=ishape, vocab=vocab, dim=dim):
        t = torch.tensor(ids, dtype=torch.int32).reshape(ishape) if ids is not None else \
            torch.randint(0, vocab, ishape, dtype=torch.int32)
        return [('ids', t, False), ('table', randn(vocab, dim), True)]
    add_case(f'embedding {desc}', 'embedding', {}, mk, lambda ids, table: F.embedding(ids, table))


# ---------------------------------------------------------------- crossEntropy

def ce_manual(logits, targets, ignore, s, reduction):
    """The backend's per-row formula, as a cross-check of F.cross_entropy."""
    x = logits.reshape(-1, logits.shape[-1])
    t = targets.reshape(-1)
    lse = torch.logsumexp(x, -1)
    keep = t != ignore
    tt = torch.where(keep, t, torch.zeros_like(t))
    xt = x.gather(1, tt[:, None])[:, 0]
    row = (1 - s) * (lse - xt) + s * (lse - x.mean(-1))
    row = torch.where(keep, row, torch.zeros_like(row))
    return row.sum() / keep.sum() if reduction == 'mean' else row.sum()


def ce_fn(ignore, s, reduction):
    def fn(logits, targets):
        v = logits.shape[-1]
        out = F.cross_entropy(logits.reshape(-1, v), targets.reshape(-1), ignore_index=ignore,
                              label_smoothing=s, reduction=reduction)
        ref = ce_manual(logits, targets, ignore, s, reduction)
        assert abs(out.item() - ref.item()) <= 1e-12 * max(1.0, abs(ref.item())), (out.item(), ref.item())
        return out
    return fn


CE_CASES = [
    # desc, logits shape, logit scale, ignored row indices (flat), smoothing, reduction
    ('4x5 mean s=0', [4, 5], 1.0, [], 0.0, 'mean'),
    ('6x10 mean s=0.1 ignored', [6, 10], 1.0, [1, 4], 0.1, 'mean'),
    ('5x7 sum s=0 ignored', [5, 7], 1.0, [2], 0.0, 'sum'),
    ('large logits 4x6 mean s=0.1 ignored', [4, 6], 1000.0, [3], 0.1, 'mean'),
    ('large logits 3x5 sum s=0', [3, 5], 1000.0, [], 0.0, 'sum'),
    ('BxTxV 2x3x8 mean s=0 ignored', [2, 3, 8], 1.0, [2, 3], 0.0, 'mean'),
    ('BxTxV 2x4x6 sum s=0.1 ignored', [2, 4, 6], 1.0, [0, 7], 0.1, 'sum'),
]
for desc, shape, scale, ignored, s, red in CE_CASES:
    def mk(shape=shape, scale=scale, ignored=ignored):
        logits = (randn(*shape) * scale).to(torch.float32)
        t = torch.randint(0, shape[-1], shape[:-1], dtype=torch.int32).reshape(-1)
        for i in ignored:
            t[i] = -100
        return [('logits', logits, True), ('targets', t.reshape(shape[:-1]), False)]
    add_case(f'crossEntropy {desc}', 'crossEntropy',
             {'ignoreIndex': -100, 'labelSmoothing': s, 'reduction': red}, mk, ce_fn(-100, s, red))


# ---------------------------------------------------------------- rope

def rope_ref(x, pos, theta, rd):
    """HF Llama rotate_half RoPE. pos: int64 [B,T] (or [T]); x float64 [B,H,T,D]."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, rd, 2, dtype=torch.int64).float() / rd))  # float32
    ang = pos.float()[..., None] * inv_freq                                                 # float32
    emb = torch.cat((ang, ang), dim=-1).to(torch.float64)
    if emb.dim() == 2:      # [T, rd] shared across the batch
        emb = emb[None, None]
    else:                   # [B, T, rd]
        emb = emb[:, None]
    cos, sin = emb.cos(), emb.sin()
    xr, xp = x[..., :rd], x[..., rd:]
    u1, u2 = xr[..., :rd // 2], xr[..., rd // 2:]
    rot = torch.cat((-u2, u1), dim=-1)
    return torch.cat((xr * cos + rot * sin, xp), dim=-1)


ROPE_CASES = [
    # desc, [B,H,T,D], positions, positionsShape ('T' or 'BT'), rotaryDim, theta
    ('1x2x4x8 pos [T] arange', [1, 2, 4, 8], list(range(4)), 'T', 8, 10000.0),
    ('2x3x5x16 pos [B,T] offsets', [2, 3, 5, 16], [3, 4, 5, 6, 7, 0, 1, 2, 3, 4], 'BT', 16, 10000.0),
    ('2x2x3x12 partial rd=8 pos [T]', [2, 2, 3, 12], [5, 6, 7], 'T', 8, 10000.0),
    ('1x1x4x32 large positions', [1, 1, 4, 32], [1000, 2047, 4095, 8191], 'T', 32, 10000.0),
    ('1x1x1x2 T=1 D=2', [1, 1, 1, 2], [3], 'T', 2, 10000.0),
    ('2x1x3x64 rd=32 pos [B,T] theta=500000', [2, 1, 3, 64], [0, 1, 2, 100, 200, 300], 'BT', 32, 500000.0),
]
for desc, shape, pos, pshape, rd, theta in ROPE_CASES:
    B, H, T, D = shape
    ps = [T] if pshape == 'T' else [B, T]
    assert len(pos) == math.prod(ps)
    p = torch.tensor(pos, dtype=torch.int64).reshape(ps)
    add_case(f'rope {desc}', 'rope',
             {'positions': pos, 'positionsShape': ps, 'theta': theta, 'rotaryDim': rd},
             lambda shape=shape: [('x', randn(*shape), True)],
             lambda x, p=p, theta=theta, rd=rd: rope_ref(x, p, theta, rd))


# ---------------------------------------------------------------- attention

def attention_ref(q, k, v, causal, key_mask, scale):
    B, Hq, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    g = Hq // Hkv
    k = k.repeat_interleave(g, dim=1)
    v = v.repeat_interleave(g, dim=1)
    sc = (1.0 / math.sqrt(D)) if scale is None else scale
    scores = sc * torch.matmul(q, k.transpose(-1, -2))           # [B,Hq,T,S]
    visible = torch.ones(B, 1, T, S, dtype=torch.bool)
    if causal:
        t = torch.arange(T)[:, None]
        s = torch.arange(S)[None, :]
        visible = visible & (s <= t + (S - T))[None, None]
    if key_mask is not None:
        km = torch.tensor(key_mask, dtype=torch.bool).reshape(B, 1, 1, S)
        visible = visible & km
    assert bool(visible.any(-1).all()), 'a query row sees no key'
    scores = scores.masked_fill(~visible, float('-inf'))
    return torch.matmul(torch.softmax(scores, -1), v)


ATTN_CASES = [
    # desc, B, Hq, Hkv, T, S, D, causal, keyMask, scale
    ('bidirectional B1 H2 T=S=5 D8', 1, 2, 2, 5, 5, 8, False, None, None),
    ('causal B2 H2 T=S=6 D8', 2, 2, 2, 6, 6, 8, True, None, None),
    ('causal kv-cache B1 H2 T=3 S=7 D8', 1, 2, 2, 3, 7, 8, True, None, None),
    ('GQA Hq4 Hkv2 causal T=S=5 D8', 1, 4, 2, 5, 5, 8, True, None, None),
    ('GQA Hq6 Hkv1 bidirectional T=4 S=6 D8', 2, 6, 1, 4, 6, 8, False, None, None),
    ('keyMask padding bidirectional B2 H2 T=4 S=6 D8', 2, 2, 2, 4, 6, 8, False,
     [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1], None),
    ('keyMask right padding causal B2 H1 T=S=5 D8', 2, 1, 1, 5, 5, 8, True,
     [1, 1, 1, 1, 1, 1, 1, 1, 0, 0], None),
    ('D64 B1 H2 T=S=4 scale=0.2', 1, 2, 2, 4, 4, 64, False, None, 0.2),
    ('T=S=1 B2 H1 D8 causal', 2, 1, 1, 1, 1, 8, True, None, None),
    ('larger B2 Hq4 Hkv2 T=S=37 D16 causal', 2, 4, 2, 37, 37, 16, True, None, None),
]
for desc, B, Hq, Hkv, T, S, D, causal, km, scale in ATTN_CASES:
    def mk(B=B, Hq=Hq, Hkv=Hkv, T=T, S=S, D=D):
        return [('q', randn(B, Hq, T, D), True), ('k', randn(B, Hkv, S, D), True),
                ('v', randn(B, Hkv, S, D), True)]
    add_case(f'attention {desc}', 'attention', {'causal': causal, 'keyMask': km, 'scale': scale}, mk,
             lambda q, k, v, causal=causal, km=km, scale=scale: attention_ref(q, k, v, causal, km, scale))


# ---------------------------------------------------------------- adamw (float32, torch.optim)

def adamw_case(name, lr, betas, eps, wd, shapes, grad_scales, steps=5):
    assert name not in NAMES
    NAMES.add(name)
    seed_for(name)
    params = [randn(*s).requires_grad_(True) for s in shapes]
    inputs = [{'name': f'p{i}', 'shape': list(s), 'data': f32_list(p)} for i, (s, p) in enumerate(zip(shapes, params))]
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    out_steps = []
    for _ in range(steps):
        grads = {}
        for i, (p, gs) in enumerate(zip(params, grad_scales)):
            g = (randn(*p.shape) * gs).to(torch.float32)
            p.grad = g
            grads[f'p{i}'] = f32_list(g)
        opt.step()
        out_steps.append({'grads': grads, 'expected': {f'p{i}': f32_list(p) for i, p in enumerate(params)}})
    CASES.append({'name': name, 'op': 'adamw',
                  'params': {'lr': lr, 'betas': list(betas), 'eps': eps, 'weight_decay': wd},
                  'inputs': inputs, 'steps': out_steps})


adamw_case('adamw lr=1e-3 betas=(0.9,0.999) wd=0.01', 1e-3, (0.9, 0.999), 1e-8, 0.01,
           [(3, 4), (5,), (2, 2, 3)], [1.0, 1.0, 1e-3])
adamw_case('adamw lr=3e-4 betas=(0.9,0.95) wd=0.1', 3e-4, (0.9, 0.95), 1e-8, 0.1,
           [(4, 3), (1,), (7,)], [1.0, 0.1, 1e-7])


# ---------------------------------------------------------------- write

def main():
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    head = json.dumps({'generator': 'scripts/gen_fixtures.py', 'torch': torch.__version__})[:-1]
    lines = [json.dumps(c, separators=(',', ':'), allow_nan=False) for c in CASES]
    text = head + ', "cases": [\n' + ',\n'.join(lines) + '\n]}\n'
    with open(OUT_PATH, 'w') as f:
        f.write(text)
    ops = {}
    for c in CASES:
        ops[c['op']] = ops.get(c['op'], 0) + 1
    print(f'wrote {OUT_PATH}: {len(CASES)} cases, {len(text)} bytes', file=sys.stderr)
    print(' '.join(f'{k}:{v}' for k, v in ops.items()), file=sys.stderr)


if __name__ == '__main__':
    main()

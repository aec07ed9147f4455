#!/usr/bin/python3
"""PyTorch reference fixtures for Loom's trainer tests (src/train/).

Writes test/fixtures/train.json:
  - adamw: torch.optim.AdamW with two param groups (decayed, and not decayed with its own LR)
    under a LambdaLR warmup+cosine schedule: initial params, the gradient fed at each step, the
    params after each step and the LR of each group at each step;
  - sgd: torch.optim.SGD (plain, momentum+dampening+weight decay, nesterov) trajectories;
  - schedules: the LR multiplier at each step of transformers' get_constant/linear/cosine
    _schedule_with_warmup and get_cosine_with_min_lr_schedule_with_warmup (transformers is not
    installed: the lambdas below are copied from transformers/optimization.py);
  - clip: torch.nn.utils.clip_grad_norm_ total norms and clipped gradients.

Run from the repository root with Debian's Python (torch 1.13; the python3 first on PATH may not
see it):

    /usr/bin/python3 scripts/gen_train_fixtures.py

Deterministic: each case seeds torch from a hash of its name. Values are float32, stored as the
shortest decimal that round-trips; LR factors are float64.
"""

import json
import math
import os
import zlib

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_PATH = os.path.join(ROOT, 'test', 'fixtures', 'train.json')

torch.set_num_threads(1)


def seed_for(name):
    torch.manual_seed(zlib.crc32(name.encode('utf-8')))


def f32(t):
    return [float(str(v)) for v in t.detach().to(torch.float32).reshape(-1).numpy()]


# ---------------------------------------------------------------- transformers' schedule lambdas

def constant_with_warmup(step, warmup):
    if step < warmup:
        return float(step) / float(max(1.0, warmup))
    return 1.0


def linear_with_warmup(step, warmup, total):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    return max(0.0, float(total - step) / float(max(1, total - warmup)))


def cosine_with_warmup(step, warmup, total, num_cycles=0.5):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def cosine_with_min_lr(step, warmup, total, min_lr_rate, num_cycles=0.5):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    factor = factor * (1 - min_lr_rate) + min_lr_rate
    return max(0, factor)


def schedules():
    out = []
    for warmup, total in [(0, 10), (3, 10), (4, 4), (2, 7)]:
        steps = list(range(total + 3))
        out.append({'name': 'constant', 'warmup': warmup, 'total': total, 'minLrRatio': 0,
                    'factors': [constant_with_warmup(s, warmup) for s in steps]})
        out.append({'name': 'linear', 'warmup': warmup, 'total': total, 'minLrRatio': 0,
                    'factors': [linear_with_warmup(s, warmup, total) for s in steps]})
        out.append({'name': 'cosine', 'warmup': warmup, 'total': total, 'minLrRatio': 0,
                    'factors': [cosine_with_warmup(s, warmup, total) for s in steps]})
        out.append({'name': 'cosine', 'warmup': warmup, 'total': total, 'minLrRatio': 0.1,
                    'factors': [cosine_with_min_lr(s, warmup, total, 0.1) for s in steps]})
    return out


# ---------------------------------------------------------------- optimisers

def adamw_case():
    name = 'adamw_groups_cosine'
    seed_for(name)
    w = torch.randn(4, 3)
    b = torch.randn(3)
    init = {'w': f32(w), 'b': f32(b)}
    w.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.AdamW([
        {'params': [w], 'weight_decay': 0.1},
        {'params': [b], 'weight_decay': 0.0, 'lr': 5e-3},
    ], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01)
    warmup, total = 2, 6
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_with_warmup(s, warmup, total))
    steps = []
    for _ in range(total):
        gw = torch.randn(4, 3)
        gb = torch.randn(3)
        w.grad = gw.clone()
        b.grad = gb.clone()
        lrs = [g['lr'] for g in opt.param_groups]
        opt.step()
        sched.step()
        steps.append({'grads': {'w': f32(gw), 'b': f32(gb)}, 'lrs': lrs,
                      'params': {'w': f32(w), 'b': f32(b)}})
    return {'name': name, 'lr': 1e-2, 'betas': [0.9, 0.99], 'eps': 1e-8,
            'groups': [{'names': ['w'], 'weightDecay': 0.1}, {'names': ['b'], 'weightDecay': 0.0, 'lr': 5e-3}],
            'schedule': {'name': 'cosine', 'warmup': warmup, 'total': total},
            'shapes': {'w': [4, 3], 'b': [3]}, 'init': init, 'steps': steps}


def sgd_case(name, **kw):
    seed_for(name)
    w = torch.randn(3, 5)
    init = f32(w)
    w.requires_grad_(True)
    opt = torch.optim.SGD([w], **kw)
    steps = []
    for _ in range(5):
        g = torch.randn(3, 5)
        w.grad = g.clone()
        opt.step()
        steps.append({'grad': f32(g), 'param': f32(w)})
    return {'name': name, 'options': kw, 'shape': [3, 5], 'init': init, 'steps': steps}


def clip_case(name, max_norm, scale=1.0):
    seed_for(name)
    shapes = [[3, 4], [4], [2, 2, 2]]
    grads = [torch.randn(*s) * scale for s in shapes]
    params = [torch.zeros(*s, requires_grad=True) for s in shapes]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return {'name': name, 'maxNorm': max_norm, 'shapes': shapes, 'grads': [f32(g) for g in grads],
            'totalNorm': float(total), 'clipped': [f32(p.grad) for p in params]}


def main():
    data = {
        'schedules': schedules(),
        'adamw': adamw_case(),
        'sgd': [
            sgd_case('sgd_plain', lr=0.1),
            sgd_case('sgd_momentum', lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
            sgd_case('sgd_nesterov', lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        ],
        'clip': [
            clip_case('clip_active', 1.0),
            clip_case('clip_inactive', 100.0),
            clip_case('clip_small_grads', 0.5, scale=1e-3),
        ],
    }
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    with open(OUT_PATH, 'w') as f:
        json.dump(data, f, indent=None, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {OUT_PATH}')


if __name__ == '__main__':
    main()

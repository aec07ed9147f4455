#!/usr/bin/python3
"""Writes test/fixtures/safetensors/python_dtypes.safetensors (one tensor of each dtype Loom reads,
with edge values) and python_dtypes.json (what each tensor holds, widened to float32, plus the float32
sources that torch rounded to F16/BF16), so the TypeScript reader is checked against torch's values
and the TypeScript writer against these exact bytes. Run by gen_model_fixtures.py, or alone:

    /usr/bin/python3 scripts/gen_dtype_fixture.py
"""

import json
import math
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as R  # noqa: E402


def jsonable(values):
    """float32 values as JSON: shortest round-trip decimals; non-finite ones as strings."""
    out = []
    for v in np.asarray(values, dtype=np.float32).reshape(-1):
        out.append(str(v) if not np.isfinite(v) else float(str(v)))  # 'inf', '-inf', 'nan'
    return out


def edge_sources(kind):
    """float32 inputs that exercise rounding: exact ties, subnormals, overflow, signed zeros, NaN."""
    if kind == 'F16':
        ulp1 = 2.0 ** -10
        special = [0.0, -0.0, 1.0, -2.5, 65504.0, 65519.99, 65520.0, -65520.0, 1e6, 6.1035156e-05, 6.0e-05,
                   2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -25, 2.0 ** -26, 1.5 * 2.0 ** -24, 1e-10,
                   1 + ulp1 / 2, 1 + 3 * ulp1 / 2, 1 + ulp1 / 2 + 2.0 ** -20, -(1 + 3 * ulp1 / 2),
                   2049.0, 2051.0, math.inf, -math.inf, math.nan]
    else:
        ulp1 = 2.0 ** -7
        special = [0.0, -0.0, 1.0, -2.5, 3.3895314e38, 3.4028235e38, 1e-40, 1e-45, 9.1835e-41, 1.1754944e-38,
                   1 + ulp1 / 2, 1 + 3 * ulp1 / 2, 1 + ulp1 / 2 + 2.0 ** -20, -(1 + 3 * ulp1 / 2), 257.0, 259.0,
                   math.inf, -math.inf]  # no NaN: torch's vectorised path writes 0xffff, its scalar one 0x7fc0
    g = torch.Generator().manual_seed(7 if kind == 'F16' else 11)
    scaled = torch.randn(96, generator=g) * torch.pow(10.0, torch.empty(96).uniform_(-9, 5, generator=g))
    bits = torch.randint(-2 ** 31, 2 ** 31 - 1, (64,), generator=g, dtype=torch.int32).view(torch.float32)
    bits = bits[torch.isfinite(bits)]  # random bit patterns: every exponent, subnormals included
    return torch.cat([torch.tensor(special, dtype=torch.float32), scaled.float(), bits])


def write_dtype_fixture(folder):
    os.makedirs(folder, exist_ok=True)
    f32 = torch.tensor([0.0, -0.0, 1.0, -2.5, 3.4028235e38, 1e-45, 1.1754944e-38, math.inf, -math.inf, math.nan,
                        0.1, 1.0 / 3.0], dtype=torch.float32).reshape(3, 4)
    f16_src, bf16_src = edge_sources('F16'), edge_sources('BF16')
    i64 = torch.tensor([0, 1, -1, 2 ** 31, -2 ** 31 - 1, 2 ** 53 - 1, -(2 ** 53 - 1), 123456789012], dtype=torch.int64).reshape(2, 4)
    i32 = torch.tensor([0, -1, 2 ** 31 - 1, -2 ** 31, 7, 1000], dtype=torch.int32).reshape(2, 3)
    tensors = {
        'f32': f32, 'f16': f16_src.half(), 'bf16': bf16_src.bfloat16(), 'i64': i64, 'i32': i32,
        'scalar': torch.tensor(1.25, dtype=torch.float32), 'empty': torch.zeros(0, 3, dtype=torch.float32),
        'cube': torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 8,
    }
    meta = {'format': 'pt', 'source': 'scripts/gen_dtype_fixture.py'}
    R.write_safetensors(os.path.join(folder, 'python_dtypes.safetensors'), tensors, meta)
    expected = {
        'metadata': meta,
        'tensors': {
            name: {'dtype': R._NAME[t.dtype], 'shape': list(t.shape),
                   'values': [int(v) for v in t.reshape(-1).tolist()] if not t.is_floating_point() else jsonable(t.float())}
            for name, t in tensors.items()
        },
        # The float32 values that torch's .half() / .bfloat16() rounded to the stored F16 / BF16.
        'sources': {'f16': jsonable(f16_src), 'bf16': jsonable(bf16_src)},
    }
    with open(os.path.join(folder, 'python_dtypes.json'), 'w') as f:
        f.write(json.dumps(expected, separators=(',', ':'), sort_keys=True) + '\n')
    print(f'{folder}/python_dtypes.safetensors: {len(tensors)} tensors')


if __name__ == '__main__':
    write_dtype_fixture(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'test', 'fixtures', 'safetensors'))

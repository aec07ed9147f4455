"""Independent checks of the PyTorch references in hf_reference.py, run by gen_model_fixtures.py before
it writes anything: a fixture is only as good as the reference that made it.

- GPT-2 and BERT layers against torch.nn.TransformerEncoderLayer (pre-LN causal / post-LN) with the
  checkpoint's weights mapped in; Llama/Qwen2 against a per-head loop with complex-number RoPE and
  explicit grouped-query head mapping, in float64.
- Causality (a later token never changes earlier logits), padding (a padded row equals the same
  row run alone without pads), RoPE (shifting every position leaves logits unchanged).
- The loss recomputed by hand from the logits; gradients against float64 central differences.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import hf_reference as R


def close(a, b, tol, what):
    err = (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
    scale = max(1.0, b.double().abs().max().item() if b.numel() else 0.0)
    if not err <= tol * scale:
        raise AssertionError(f'{what}: max abs diff {err:.3g} > {tol} * {scale:.3g}')


def kind_of(case):
    arch = case['config']['architectures'][0]
    if arch.endswith('ForCausalLM') or arch.endswith('LMHeadModel'):
        return 'clm'
    return 'seq' if arch.endswith('ForSequenceClassification') else 'token'


# ---------------------------------------------------------------- independent forwards

def gpt2_torch_layers(p, c, ids, mask):
    E, H = c['n_embd'], c['n_head']
    T = ids.shape[1]
    x = p['transformer.wte.weight'][ids] + p['transformer.wpe.weight'][torch.arange(T)]
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for i in range(c['n_layer']):
        L = f'transformer.h.{i}.'
        layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=p[L + 'mlp.c_fc.weight'].shape[1], dropout=0.0,
                                           activation=R.gelu_new, layer_norm_eps=c['layer_norm_epsilon'],
                                           batch_first=True, norm_first=True)
        load(layer, {'self_attn.in_proj_weight': p[L + 'attn.c_attn.weight'].T, 'self_attn.in_proj_bias': p[L + 'attn.c_attn.bias'],
                     'self_attn.out_proj.weight': p[L + 'attn.c_proj.weight'].T, 'self_attn.out_proj.bias': p[L + 'attn.c_proj.bias'],
                     'linear1.weight': p[L + 'mlp.c_fc.weight'].T, 'linear1.bias': p[L + 'mlp.c_fc.bias'],
                     'linear2.weight': p[L + 'mlp.c_proj.weight'].T, 'linear2.bias': p[L + 'mlp.c_proj.bias'],
                     'norm1.weight': p[L + 'ln_1.weight'], 'norm1.bias': p[L + 'ln_1.bias'],
                     'norm2.weight': p[L + 'ln_2.weight'], 'norm2.bias': p[L + 'ln_2.bias']})
        x = layer(x, src_mask=causal, src_key_padding_mask=None if mask is None else mask == 0)
    return F.layer_norm(x, (E,), p['transformer.ln_f.weight'], p['transformer.ln_f.bias'], c['layer_norm_epsilon'])


def bert_torch_layers(p, c, ids, mask, token_type_ids):
    E, H, eps = c['hidden_size'], c['num_attention_heads'], c['layer_norm_eps']
    T = ids.shape[1]
    e = 'bert.embeddings.'
    tt = torch.zeros_like(ids) if token_type_ids is None else token_type_ids
    x = p[e + 'word_embeddings.weight'][ids] + p[e + 'token_type_embeddings.weight'][tt] + p[e + 'position_embeddings.weight'][torch.arange(T)]
    x = F.layer_norm(x, (E,), p[e + 'LayerNorm.weight'], p[e + 'LayerNorm.bias'], eps)
    for i in range(c['num_hidden_layers']):
        L = f'bert.encoder.layer.{i}.'
        layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=c['intermediate_size'], dropout=0.0, activation='gelu',
                                           layer_norm_eps=eps, batch_first=True, norm_first=False)
        a = L + 'attention.self.'
        load(layer, {'self_attn.in_proj_weight': torch.cat([p[a + n + '.weight'] for n in ('query', 'key', 'value')]),
                     'self_attn.in_proj_bias': torch.cat([p[a + n + '.bias'] for n in ('query', 'key', 'value')]),
                     'self_attn.out_proj.weight': p[L + 'attention.output.dense.weight'],
                     'self_attn.out_proj.bias': p[L + 'attention.output.dense.bias'],
                     'norm1.weight': p[L + 'attention.output.LayerNorm.weight'], 'norm1.bias': p[L + 'attention.output.LayerNorm.bias'],
                     'linear1.weight': p[L + 'intermediate.dense.weight'], 'linear1.bias': p[L + 'intermediate.dense.bias'],
                     'linear2.weight': p[L + 'output.dense.weight'], 'linear2.bias': p[L + 'output.dense.bias'],
                     'norm2.weight': p[L + 'output.LayerNorm.weight'], 'norm2.bias': p[L + 'output.LayerNorm.bias']})
        x = layer(x, src_key_padding_mask=mask == 0)  # grad enabled: the layer's slow (reference) path
    return x


def load(module, tensors):
    with torch.no_grad():
        for name, value in tensors.items():
            module.get_parameter(name).copy_(value)
    module.eval()


def llama_loops(p, c, ids, mask):
    """Llama/Qwen2 in float64, one head at a time: RoPE as complex rotation of (x_i, x_{i+D/2}),
    query head h reading kv head h // (H / KV), masked keys dropped."""
    p = {k: v.double() for k, v in p.items()}
    E, H, eps = c['hidden_size'], c['num_attention_heads'], c['rms_norm_eps']
    KV = c['num_key_value_heads']
    D = E // H
    B, T = ids.shape
    inv = 1.0 / (c['rope_theta'] ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    rot = torch.polar(torch.ones(T, D // 2, dtype=torch.float64), torch.arange(T, dtype=torch.float64)[:, None] * inv)

    def rope(x):  # [T, D]
        z = torch.complex(x[:, :D // 2], x[:, D // 2:]) * rot
        return torch.cat([z.real, z.imag], dim=-1)

    def norm(x, w):
        return w * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)

    def lin(x, n):
        y = x @ p[n + '.weight'].T
        return y + p[n + '.bias'] if n + '.bias' in p else y

    out = []
    for b in range(B):
        x = p['model.embed_tokens.weight'][ids[b]]
        for i in range(c['num_hidden_layers']):
            L = f'model.layers.{i}.'
            h = norm(x, p[L + 'input_layernorm.weight'])
            q, k, v = lin(h, L + 'self_attn.q_proj'), lin(h, L + 'self_attn.k_proj'), lin(h, L + 'self_attn.v_proj')
            attn = []
            for hd in range(H):
                g = hd // (H // KV)
                qh, kh, vh = rope(q[:, hd * D:(hd + 1) * D]), rope(k[:, g * D:(g + 1) * D]), v[:, g * D:(g + 1) * D]
                s = qh @ kh.T / math.sqrt(D)
                allowed = torch.tril(torch.ones(T, T, dtype=torch.bool)) & (mask[b][None, :] == 1)
                attn.append(torch.softmax(s.masked_fill(~allowed, -math.inf), dim=-1) @ vh)
            x = x + lin(torch.cat(attn, dim=-1), L + 'self_attn.o_proj')
            h = norm(x, p[L + 'post_attention_layernorm.weight'])
            x = x + lin(F.silu(lin(h, L + 'mlp.gate_proj')) * lin(h, L + 'mlp.up_proj'), L + 'mlp.down_proj')
        out.append(norm(x, p['model.norm.weight']))
    return torch.stack(out)


# ---------------------------------------------------------------- checks

def check_independent(case, w):
    c, inp = case['config'], case['inputs']
    ids, mask = torch.tensor(inp['input_ids']), torch.tensor(inp['attention_mask'])
    mt = c['model_type']
    if mt == 'gpt2':
        # Left padding makes fully masked query rows, which nn.MultiheadAttention turns into NaN:
        # compare without padding there (padding is covered by check_padding).
        m = None if (mask[:, 0] == 0).any() else mask
        ref = R.gpt2_hidden(w, c, ids, m)
        close(gpt2_torch_layers(w, c, ids, m), ref, 2e-5, f"{case['name']}: vs nn.TransformerEncoderLayer")
    elif mt == 'bert':
        tt = torch.tensor(inp['token_type_ids']) if 'token_type_ids' in inp else None
        close(bert_torch_layers(w, c, ids, mask, tt), R.bert_hidden(w, c, ids, mask, tt), 2e-5,
              f"{case['name']}: vs nn.TransformerEncoderLayer")
    else:
        close(llama_loops(w, c, ids, mask), R.llama_hidden(w, c, ids, mask), 1e-5, f"{case['name']}: vs per-head float64 loops")


def check_loss(case, logits, loss):
    labels = case['inputs']['labels']
    lg = logits.double()
    nll = []
    for b, row in enumerate(labels):
        if kind_of(case) == 'seq':
            nll.append(torch.logsumexp(lg[b], 0) - lg[b, row])
            continue
        for t_, y in enumerate(row):
            src = t_ - 1 if kind_of(case) == 'clm' else t_  # causal LM: logits at t-1 predict label t
            if y != -100 and src >= 0:
                nll.append(torch.logsumexp(lg[b, src], 0) - lg[b, src, y])
    close(loss, torch.stack(nll).mean(), 1e-6, f"{case['name']}: loss recomputed by hand")


def check_causal_and_padding(case, w, logits):
    c, inp = case['config'], case['inputs']
    ids, mask = torch.tensor(inp['input_ids']), torch.tensor(inp['attention_mask'])
    extra = {'token_type_ids': torch.tensor(inp['token_type_ids'])} if 'token_type_ids' in inp else {}
    fwd = case['forward']
    with torch.no_grad():
        if c['model_type'] != 'bert' and kind_of(case) != 'seq':
            ids2 = ids.clone()
            ids2[:, -1] = (ids2[:, -1] + 1) % c['vocab_size']
            close(fwd(w, c, ids2, mask)[:, :-1], logits[:, :-1], 0, f"{case['name']}: causal")
        for b in range(ids.shape[0]):
            keep = mask[b].nonzero().flatten()
            if len(keep) == ids.shape[1]:
                continue
            lo, hi = keep[0].item(), keep[-1].item() + 1
            sub = {k: v[b:b + 1, lo:hi] for k, v in extra.items()}
            kw = {} if c['model_type'] == 'bert' else {'position_ids': torch.arange(lo, hi)[None]}  # left pad keeps positions
            alone = fwd(w, c, ids[b:b + 1, lo:hi], None, **kw, **sub)
            got = logits[b:b + 1] if kind_of(case) == 'seq' else logits[b:b + 1, lo:hi]
            close(alone, got, 1e-5, f"{case['name']}: row {b} alone without padding")


def check_rope_shift(case, w, logits):
    c = case['config']
    if c['model_type'] == 'gpt2' or c['model_type'] == 'bert':
        return
    ids, mask = torch.tensor(case['inputs']['input_ids']), torch.tensor(case['inputs']['attention_mask'])
    pos = torch.arange(ids.shape[1])[None].expand(ids.shape[0], -1) + 5
    with torch.no_grad():
        close(case['forward'](w, c, ids, mask, position_ids=pos), logits, 1e-4, f"{case['name']}: RoPE shift invariance")


def check_grads(case, w, grads):
    """Three entries of each gradient against float64 central differences."""
    c, inp = case['config'], case['inputs']
    kw = {k: torch.tensor(v) for k, v in inp.items() if k != 'labels'}
    labels = torch.tensor(inp['labels'])
    w64 = {k: v.double() for k, v in w.items()}
    gen = torch.Generator().manual_seed(0)
    for name, g in grads.items():
        for _ in range(3):
            i = torch.randint(g.numel(), (1,), generator=gen).item()
            vals = []
            for sign in (1, -1):
                p = dict(w64)
                p[name] = w64[name].clone().reshape(-1)
                p[name][i] += sign * 1e-6
                p[name] = p[name].reshape(g.shape)
                with torch.no_grad():
                    vals.append(case['loss'](case['forward'](p, c, **kw), labels).double().item())
            fd = (vals[0] - vals[1]) / 2e-6
            got = g.reshape(-1)[i].item()
            if abs(fd - got) > 1e-3 * max(1e-2, g.abs().max().item()):
                raise AssertionError(f"{case['name']}: d loss / d {name}[{i}] = {got}, finite differences say {fd}")


def run_checks(case, weights, logits, loss, grads):
    check_independent(case, weights)
    check_loss(case, logits, loss)
    check_causal_and_padding(case, weights, logits)
    check_rope_shift(case, weights, logits)
    check_grads(case, weights, grads)

#!/usr/bin/python3
"""Model parity fixtures: tiny random Hugging Face checkpoints with their reference outputs.

For each case writes test/fixtures/models/<name>/: config.json (as transformers' save_pretrained
writes it for that class), model.safetensors (the keys transformers saves: tied weights once), and
expected.json (inputs, logits, loss, gradients of a few parameters), computed in float32 by the
PyTorch references in hf_reference.py. Also writes test/fixtures/safetensors/python_dtypes.* for
the safetensors reader/writer tests. Before writing, the references are checked against independent
formulations (torch.nn.TransformerEncoderLayer, complex-number RoPE, per-head loops), the causal and
padding properties, losses recomputed by hand, and gradients against float64 finite differences.

Run from anywhere with Debian's torch (the pyenv python3 on PATH cannot see it):

    /usr/bin/python3 scripts/gen_model_fixtures.py

Deterministic: each case seeds its own generator; torch runs on one thread.
"""

import json
import math
import os
import sys
import zlib

import numpy as np
import torch

sys.dont_write_bytecode = True  # no scripts/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as R  # noqa: E402
from fixture_checks import run_checks  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'models')
TRANSFORMERS_VERSION = '4.46.3'  # the version whose save_pretrained these config.json files mirror

torch.set_num_threads(1)


# ---------------------------------------------------------------- configs (transformers' to_diff_dict output)

def gpt2_config(arch, **kw):
    c = dict(activation_function='gelu_new', attn_pdrop=0.1, embd_pdrop=0.1, initializer_range=0.02,
             layer_norm_epsilon=1e-05, model_type='gpt2', n_inner=None, reorder_and_upcast_attn=False,
             resid_pdrop=0.1, scale_attn_by_inverse_layer_idx=False, scale_attn_weights=True,
             summary_activation=None, summary_first_dropout=0.1, summary_proj_to_labels=True,
             summary_type='cls_index', summary_use_proj=True, use_cache=True)
    c.update(kw)
    return finish(c, arch)


def bert_config(arch, **kw):
    c = dict(attention_probs_dropout_prob=0.1, classifier_dropout=None, hidden_act='gelu', hidden_dropout_prob=0.1,
             initializer_range=0.02, layer_norm_eps=1e-12, model_type='bert', pad_token_id=0,
             position_embedding_type='absolute', type_vocab_size=2, use_cache=True)
    c.update(kw)
    return finish(c, arch)


def llama_config(arch, **kw):
    c = dict(attention_bias=False, attention_dropout=0.0, bos_token_id=1, eos_token_id=2, hidden_act='silu',
             initializer_range=0.02, mlp_bias=False, model_type='llama', pretraining_tp=1, rms_norm_eps=1e-06,
             rope_scaling=None, rope_theta=10000.0, tie_word_embeddings=False, use_cache=True)
    c.update(kw)
    c['head_dim'] = c['hidden_size'] // c['num_attention_heads']
    return finish(c, arch)


def qwen2_config(arch, **kw):
    c = dict(attention_dropout=0.0, hidden_act='silu', initializer_range=0.02, max_window_layers=28,
             model_type='qwen2', rms_norm_eps=1e-06, rope_scaling=None, rope_theta=10000.0, sliding_window=None,
             tie_word_embeddings=False, use_cache=True, use_sliding_window=False)
    c.update(kw)
    return finish(c, arch)


def finish(c, arch):
    c['architectures'] = [arch]
    c['torch_dtype'] = 'float32'
    c['transformers_version'] = TRANSFORMERS_VERSION
    return c


def labels_of(names):
    return dict(id2label={str(i): n for i, n in enumerate(names)}, label2id={n: i for i, n in enumerate(names)})


# ---------------------------------------------------------------- parameters

class Params:
    """Named random parameters: weights ~ N(0, 0.7/sqrt(fan_in)) so activations stay O(1), norms near
    1 and biases small but non-zero so a swapped or missing one shows."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        self.p = {}

    def _randn(self, *shape):
        return torch.randn(shape, generator=self.g, dtype=torch.float32)

    def weight(self, name, shape, fan_in):
        self.p[name] = self._randn(*shape) * (0.7 / math.sqrt(fan_in))

    def emb(self, name, shape, std=0.15):
        self.p[name] = self._randn(*shape) * std

    def bias(self, name, n):
        self.p[name] = self._randn(n) * 0.05

    def norm(self, name, n, bias=True):
        self.p[name + '.weight'] = 1.0 + 0.1 * self._randn(n)
        if bias:
            self.p[name + '.bias'] = 0.05 * self._randn(n)

    def linear(self, name, n_in, n_out, bias=True):
        self.weight(name + '.weight', (n_out, n_in), n_in)
        if bias:
            self.bias(name + '.bias', n_out)


def gpt2_params(P, c, head=None):
    E, I = c['n_embd'], c['n_inner'] or 4 * c['n_embd']
    P.emb('transformer.wte.weight', (c['vocab_size'], E))
    P.emb('transformer.wpe.weight', (c['n_positions'], E), 0.05)
    for i in range(c['n_layer']):
        L = f'transformer.h.{i}.'
        P.norm(L + 'ln_1', E)
        for n, (a, b) in (('attn.c_attn', (E, 3 * E)), ('attn.c_proj', (E, E)), ('mlp.c_fc', (E, I)), ('mlp.c_proj', (I, E))):
            P.weight(L + n + '.weight', (a, b), a)  # Conv1D: [in, out]
            P.bias(L + n + '.bias', b)
        P.norm(L + 'ln_2', E)
    P.norm('transformer.ln_f', E)
    if head == 'score':
        P.linear('score', E, len(c['id2label']), bias=False)


def bert_params(P, c, head):
    E, I = c['hidden_size'], c['intermediate_size']
    e = 'bert.embeddings.'
    P.emb(e + 'word_embeddings.weight', (c['vocab_size'], E))
    P.emb(e + 'position_embeddings.weight', (c['max_position_embeddings'], E), 0.05)
    P.emb(e + 'token_type_embeddings.weight', (c['type_vocab_size'], E), 0.1)
    P.norm(e + 'LayerNorm', E)
    for i in range(c['num_hidden_layers']):
        L = f'bert.encoder.layer.{i}.'
        for n in ('query', 'key', 'value'):
            P.linear(L + 'attention.self.' + n, E, E)
        P.linear(L + 'attention.output.dense', E, E)
        P.norm(L + 'attention.output.LayerNorm', E)
        P.linear(L + 'intermediate.dense', E, I)
        P.linear(L + 'output.dense', I, E)
        P.norm(L + 'output.LayerNorm', E)
    if head == 'mlm':
        P.linear('cls.predictions.transform.dense', E, E)
        P.norm('cls.predictions.transform.LayerNorm', E)
        P.bias('cls.predictions.bias', c['vocab_size'])
    else:
        P.linear('bert.pooler.dense', E, E)
        P.linear('classifier', E, len(c['id2label']))


def llama_params(P, c, head):
    E, I, H = c['hidden_size'], c['intermediate_size'], c['num_attention_heads']
    KV, D = c['num_key_value_heads'], c.get('head_dim') or E // H
    qkv_bias = c['model_type'] == 'qwen2' or c.get('attention_bias')
    P.emb('model.embed_tokens.weight', (c['vocab_size'], E))
    for i in range(c['num_hidden_layers']):
        L = f'model.layers.{i}.'
        P.norm(L + 'input_layernorm', E, bias=False)
        P.linear(L + 'self_attn.q_proj', E, H * D, qkv_bias)
        P.linear(L + 'self_attn.k_proj', E, KV * D, qkv_bias)
        P.linear(L + 'self_attn.v_proj', E, KV * D, qkv_bias)
        P.linear(L + 'self_attn.o_proj', H * D, E, bool(c.get('attention_bias')))
        P.norm(L + 'post_attention_layernorm', E, bias=False)
        P.linear(L + 'mlp.gate_proj', E, I, False)
        P.linear(L + 'mlp.up_proj', E, I, False)
        P.linear(L + 'mlp.down_proj', I, E, False)
    P.norm('model.norm', E, bias=False)
    if head == 'lm' and not c['tie_word_embeddings']:
        P.linear('lm_head', E, c['vocab_size'], False)
    if head == 'token':
        P.linear('score', E, len(c['id2label']))


# ---------------------------------------------------------------- cases

def t(x):
    return torch.tensor(x, dtype=torch.int64)


def lm_labels(ids, mask):
    return [[i if m else -100 for i, m in zip(r, mr)] for r, mr in zip(ids, mask)]


def cases():
    out = []

    c = gpt2_config('GPT2LMHeadModel', vocab_size=96, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                    bos_token_id=95, eos_token_id=95)
    ids = [[95, 17, 42, 8, 63, 21, 5, 88], [95, 30, 12, 77, 4, 95, 95, 95]]
    mask = [[1] * 8, [1, 1, 1, 1, 1, 0, 0, 0]]
    out.append(dict(name='gpt2', config=c, params=lambda P, c=c: gpt2_params(P, c), forward=R.gpt2_lm_logits,
                    loss=R.causal_lm_loss, tied={'lm_head.weight': 'transformer.wte.weight'},
                    inputs=dict(input_ids=ids, attention_mask=mask, labels=lm_labels(ids, mask)),
                    grads=['transformer.wte.weight', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.0.ln_1.weight',
                           'transformer.h.1.mlp.c_proj.weight', 'transformer.ln_f.bias']))

    c = gpt2_config('GPT2ForSequenceClassification', vocab_size=96, n_positions=16, n_embd=48, n_layer=2, n_head=4,
                    n_inner=96, bos_token_id=95, eos_token_id=95, pad_token_id=95, **labels_of(['negative', 'neutral', 'positive']))
    ids = [[95, 95, 95, 14, 3, 71, 40], [9, 52, 33, 60, 2, 18, 81]]  # left padding in row 0
    mask = [[0, 0, 0, 1, 1, 1, 1], [1] * 7]
    out.append(dict(name='gpt2_seq_cls', config=c, params=lambda P, c=c: gpt2_params(P, c, 'score'),
                    forward=R.gpt2_seq_cls_logits, loss=R.token_loss, tied={},
                    inputs=dict(input_ids=ids, attention_mask=mask, labels=[2, 0]),
                    grads=['score.weight', 'transformer.wte.weight', 'transformer.h.0.attn.c_attn.bias', 'transformer.h.1.ln_1.weight']))

    c = bert_config('BertForMaskedLM', vocab_size=80, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=32)
    # [CLS]=2 [SEP]=3 [MASK]=4 [PAD]=0; row 0 is a sentence pair, row 1 is right-padded
    ids = [[2, 11, 4, 56, 3, 4, 3], [2, 25, 61, 4, 3, 0, 0]]
    labels = [[-100, -100, 47, -100, -100, 19, -100], [-100, 25, -100, 70, -100, -100, -100]]
    out.append(dict(name='bert', config=c, params=lambda P, c=c: bert_params(P, c, 'mlm'), forward=R.bert_mlm_logits,
                    loss=R.token_loss,
                    tied={'cls.predictions.decoder.weight': 'bert.embeddings.word_embeddings.weight',
                          'cls.predictions.decoder.bias': 'cls.predictions.bias'},
                    inputs=dict(input_ids=ids, attention_mask=[[1] * 7, [1, 1, 1, 1, 1, 0, 0]],
                                token_type_ids=[[0, 0, 0, 0, 0, 1, 1], [0] * 7], labels=labels),
                    grads=['bert.embeddings.word_embeddings.weight', 'bert.embeddings.token_type_embeddings.weight',
                           'bert.encoder.layer.0.attention.self.query.weight', 'bert.encoder.layer.1.output.LayerNorm.weight',
                           'cls.predictions.transform.dense.weight', 'cls.predictions.bias']))

    c = bert_config('BertForSequenceClassification', vocab_size=80, hidden_size=48, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=80, max_position_embeddings=24, **labels_of(['NEG', 'POS']))
    ids = [[2, 31, 44, 9, 72, 3], [2, 17, 66, 3, 0, 0]]
    out.append(dict(name='bert_seq_cls', config=c, params=lambda P, c=c: bert_params(P, c, 'cls'),
                    forward=R.bert_seq_cls_logits, loss=R.token_loss, tied={},
                    inputs=dict(input_ids=ids, attention_mask=[[1] * 6, [1, 1, 1, 1, 0, 0]], labels=[1, 0]),
                    grads=['classifier.weight', 'classifier.bias', 'bert.pooler.dense.weight',
                           'bert.embeddings.position_embeddings.weight', 'bert.encoder.layer.0.attention.output.dense.weight']))

    c = llama_config('LlamaForCausalLM', vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-05)
    ids = [[1, 37, 80, 12, 55, 9], [1, 63, 21, 70, 0, 0]]
    mask = [[1] * 6, [1, 1, 1, 1, 0, 0]]
    out.append(dict(name='llama', config=c, params=lambda P, c=c: llama_params(P, c, 'lm'), forward=R.llama_lm_logits,
                    loss=R.causal_lm_loss, tied={}, inputs=dict(input_ids=ids, attention_mask=mask, labels=lm_labels(ids, mask)),
                    grads=['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.k_proj.weight',
                           'model.layers.0.input_layernorm.weight', 'model.norm.weight', 'lm_head.weight']))

    c = qwen2_config('Qwen2ForCausalLM', vocab_size=88, hidden_size=32, intermediate_size=80, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rope_theta=1000000.0,
                     tie_word_embeddings=True, bos_token_id=85, eos_token_id=86)
    ids = [[85, 14, 7, 66, 30, 86, 87], [85, 50, 3, 41, 29, 77, 12]]
    mask = [[1, 1, 1, 1, 1, 1, 0], [1] * 7]
    out.append(dict(name='qwen2', config=c, params=lambda P, c=c: llama_params(P, c, 'lm'), forward=R.llama_lm_logits,
                    loss=R.causal_lm_loss, tied={'lm_head.weight': 'model.embed_tokens.weight'},
                    inputs=dict(input_ids=ids, attention_mask=mask, labels=lm_labels(ids, mask)),
                    grads=['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.bias', 'model.layers.0.self_attn.v_proj.weight',
                           'model.layers.1.mlp.gate_proj.weight', 'model.layers.1.post_attention_layernorm.weight']))

    c = llama_config('LlamaForTokenClassification', vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=32, pad_token_id=0,
                     **labels_of(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']))
    ids = [[1, 23, 45, 6, 38, 51, 12], [1, 9, 60, 33, 0, 0, 0]]
    out.append(dict(name='llama_token_cls', config=c, params=lambda P, c=c: llama_params(P, c, 'token'),
                    forward=R.llama_token_cls_logits, loss=R.token_loss, tied={},
                    inputs=dict(input_ids=ids, attention_mask=[[1] * 7, [1, 1, 1, 1, 0, 0, 0]],
                                labels=[[-100, 1, 2, 0, 3, -100, 0], [-100, 0, 3, 4, -100, -100, -100]]),
                    grads=['score.weight', 'score.bias', 'model.embed_tokens.weight', 'model.layers.1.self_attn.o_proj.weight',
                           'model.layers.0.post_attention_layernorm.weight']))
    return out


# ---------------------------------------------------------------- output

def f32_list(x):
    """Flat float32 values, each the shortest decimal that round-trips the float32."""
    a = x.detach().to(torch.float32).contiguous().reshape(-1).numpy()
    if not np.all(np.isfinite(a)):
        raise ValueError('non-finite value in fixture')
    return [float(str(v)) for v in a]


def packed(x):
    return {'shape': list(x.shape), 'data': f32_list(x)}


def model_inputs(case):
    """Tensors for the forward: everything in `inputs` but labels."""
    return {k: t(v) for k, v in case['inputs'].items() if k != 'labels'}


def run_case(case):
    P = Params(zlib.crc32(case['name'].encode()))
    case['params'](P)
    params = {k: v.clone().requires_grad_(True) for k, v in P.p.items()}
    logits = case['forward'](params, case['config'], **model_inputs(case))
    loss = case['loss'](logits, t(case['inputs']['labels']))
    loss.backward()
    return P.p, logits.detach(), loss.detach(), {n: params[n].grad for n in case['grads']}


def write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write('\n')


def write_compact_json(path, obj):
    """expected.json: readable keys, one line per number list (keeps the files small)."""
    with open(path, 'w') as f:
        f.write(json.dumps(obj, separators=(',', ':'), sort_keys=True) + '\n')


def main():
    all_cases = cases()
    for case in all_cases:
        weights, logits, loss, grads = run_case(case)
        run_checks(case, weights, logits, loss, grads)
        folder = os.path.join(OUT, case['name'])
        os.makedirs(folder, exist_ok=True)
        write_json(os.path.join(folder, 'config.json'), case['config'])
        R.write_safetensors(os.path.join(folder, 'model.safetensors'), weights, {'format': 'pt'})
        write_compact_json(os.path.join(folder, 'expected.json'), {
            'inputs': case['inputs'], 'logits': packed(logits), 'loss': f32_list(loss)[0],
            'grads': {n: packed(g) for n, g in grads.items()},
            'tied': case['tied'],
        })
        print(f"{case['name']}: loss {loss.item():.6f}, logits {list(logits.shape)}, {len(weights)} tensors")
    from gen_dtype_fixture import write_dtype_fixture
    write_dtype_fixture(os.path.join(ROOT, 'test', 'fixtures', 'safetensors'))


if __name__ == '__main__':
    main()

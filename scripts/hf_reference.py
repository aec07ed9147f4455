"""PyTorch reference implementations of GPT-2, BERT and Llama/Qwen2, written to compute exactly what
transformers' modeling_gpt2.py / modeling_bert.py / modeling_llama.py / modeling_qwen2.py compute
(eager attention, eval mode, no dropout), plus a safetensors writer laid out like the Python library.

Models are functions of a flat dict {Hugging Face parameter name: tensor}, so the names written to
model.safetensors and the names of the gradients are transformers' own. Used by gen_model_fixtures.py.
"""

import json
import math
import struct

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------- safetensors

# Rank of the Rust library's Dtype enum: it writes tensors by descending rank, then by name.
_RANK = {'F16': 7, 'BF16': 8, 'I32': 9, 'F32': 11, 'I64': 13}
_NAME = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int64: 'I64', torch.int32: 'I32'}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)  # numpy has no bfloat16; the bits are what we want
    return t.numpy().tobytes()  # little-endian host


def write_safetensors(path, tensors, metadata=None):
    """Byte-for-byte what safetensors.torch.save_file writes (compact JSON, '__metadata__' first,
    header padded with spaces to 8 bytes)."""
    items = sorted(tensors.items(), key=lambda kv: (-_RANK[_NAME[kv[1].dtype]], kv[0]))
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = dict(sorted(metadata.items()))
    for name, t in items:
        b = tensor_bytes(t)
        header[name] = {'dtype': _NAME[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- shared pieces

def gelu_new(x):
    """transformers' NewGELUActivation ("gelu_new", GPT-2): the tanh approximation, this formula."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def conv1d(x, w, b):
    """GPT-2's Conv1D: weight stored [in, out], y = x @ W + b."""
    out = x.size()[:-1] + (w.size(-1),)
    return torch.addmm(b, x.reshape(-1, x.size(-1)), w).view(out)


def padding_bias(attention_mask, dtype):
    """The additive [B, 1, 1, S] mask of GPT-2 and BERT: 0 where attended, finfo.min on padding."""
    m = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - m) * torch.finfo(dtype).min


def heads(x, n, d):
    """[B, T, n*d] -> [B, n, T, d]."""
    b, t, _ = x.shape
    return x.view(b, t, n, d).transpose(1, 2)


def merge(x):
    """[B, n, T, d] -> [B, T, n*d]."""
    b, n, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, n * d)


# ---------------------------------------------------------------- GPT-2

def gpt2_hidden(p, cfg, input_ids, attention_mask=None, position_ids=None, pre='transformer.'):
    """GPT2Model: learned positions (arange unless given, even with left padding), pre-LN blocks, ln_f."""
    B, T = input_ids.shape
    E, H = cfg['n_embd'], cfg['n_head']
    D, eps = E // H, cfg['layer_norm_epsilon']
    if position_ids is None:
        position_ids = torch.arange(T).unsqueeze(0)
    h = p[pre + 'wte.weight'][input_ids] + p[pre + 'wpe.weight'][position_ids]
    dtype = h.dtype
    pad = None if attention_mask is None else padding_bias(attention_mask, dtype)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T)
    for i in range(cfg['n_layer']):
        L = f'{pre}h.{i}.'
        x = F.layer_norm(h, (E,), p[L + 'ln_1.weight'], p[L + 'ln_1.bias'], eps)
        q, k, v = conv1d(x, p[L + 'attn.c_attn.weight'], p[L + 'attn.c_attn.bias']).split(E, dim=2)
        q, k, v = heads(q, H, D), heads(k, H, D), heads(v, H, D)
        w = torch.matmul(q, k.transpose(-1, -2)) / torch.full([], D ** 0.5, dtype=dtype)
        # GPT2Attention._attn: causal positions replaced by finfo.min, then the padding mask added.
        w = torch.where(causal, w, torch.full([], torch.finfo(dtype).min, dtype=dtype))
        if pad is not None:
            w = w + pad
        a = merge(torch.matmul(F.softmax(w, dim=-1), v))
        h = h + conv1d(a, p[L + 'attn.c_proj.weight'], p[L + 'attn.c_proj.bias'])
        x = F.layer_norm(h, (E,), p[L + 'ln_2.weight'], p[L + 'ln_2.bias'], eps)
        m = gelu_new(conv1d(x, p[L + 'mlp.c_fc.weight'], p[L + 'mlp.c_fc.bias']))
        h = h + conv1d(m, p[L + 'mlp.c_proj.weight'], p[L + 'mlp.c_proj.bias'])
    return F.layer_norm(h, (E,), p[pre + 'ln_f.weight'], p[pre + 'ln_f.bias'], eps)


def gpt2_lm_logits(p, cfg, input_ids, attention_mask=None, position_ids=None):
    """GPT2LMHeadModel: lm_head tied to transformer.wte (no bias)."""
    h = gpt2_hidden(p, cfg, input_ids, attention_mask, position_ids)
    return F.linear(h, p['transformer.wte.weight'])


def last_non_pad(input_ids, pad_token_id):
    """GPT2/LlamaForSequenceClassification pooling: the rightmost token that is not pad_token_id
    (works for left and right padding)."""
    non_pad = (input_ids != pad_token_id).to(torch.int32)
    idx = torch.arange(input_ids.shape[-1], dtype=torch.int32)
    return (idx * non_pad).argmax(-1)


def gpt2_seq_cls_logits(p, cfg, input_ids, attention_mask=None, position_ids=None):
    """GPT2ForSequenceClassification: score [num_labels, n_embd], no bias, pooled at the last non-pad token."""
    logits = F.linear(gpt2_hidden(p, cfg, input_ids, attention_mask, position_ids), p['score.weight'])
    return logits[torch.arange(input_ids.shape[0]), last_non_pad(input_ids, cfg['pad_token_id'])]


# ---------------------------------------------------------------- BERT

def bert_hidden(p, cfg, input_ids, attention_mask=None, token_type_ids=None):
    """BertModel encoder output: word + token_type, then + absolute position, LayerNorm; post-LN layers."""
    B, T = input_ids.shape
    E, H = cfg['hidden_size'], cfg['num_attention_heads']
    D, eps = E // H, cfg['layer_norm_eps']
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    e = 'bert.embeddings.'
    x = p[e + 'word_embeddings.weight'][input_ids] + p[e + 'token_type_embeddings.weight'][token_type_ids]
    x = x + p[e + 'position_embeddings.weight'][torch.arange(T).unsqueeze(0)]
    x = F.layer_norm(x, (E,), p[e + 'LayerNorm.weight'], p[e + 'LayerNorm.bias'], eps)
    ext = padding_bias(attention_mask, x.dtype)  # get_extended_attention_mask
    for i in range(cfg['num_hidden_layers']):
        L = f'bert.encoder.layer.{i}.'
        lin = lambda t, n: F.linear(t, p[L + n + '.weight'], p[L + n + '.bias'])  # noqa: E731
        q = heads(lin(x, 'attention.self.query'), H, D)
        k = heads(lin(x, 'attention.self.key'), H, D)
        v = heads(lin(x, 'attention.self.value'), H, D)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D) + ext
        a = merge(torch.matmul(F.softmax(s, dim=-1), v))
        a = F.layer_norm(lin(a, 'attention.output.dense') + x, (E,),
                         p[L + 'attention.output.LayerNorm.weight'], p[L + 'attention.output.LayerNorm.bias'], eps)
        m = F.gelu(lin(a, 'intermediate.dense'))  # "gelu": exact erf
        x = F.layer_norm(lin(m, 'output.dense') + a, (E,), p[L + 'output.LayerNorm.weight'], p[L + 'output.LayerNorm.bias'], eps)
    return x


def bert_mlm_logits(p, cfg, input_ids, attention_mask=None, token_type_ids=None):
    """BertForMaskedLM (no pooler): transform dense + gelu + LayerNorm, decoder tied to the word
    embeddings with bias cls.predictions.bias."""
    x = bert_hidden(p, cfg, input_ids, attention_mask, token_type_ids)
    c = 'cls.predictions.'
    t = F.gelu(F.linear(x, p[c + 'transform.dense.weight'], p[c + 'transform.dense.bias']))
    t = F.layer_norm(t, (cfg['hidden_size'],), p[c + 'transform.LayerNorm.weight'], p[c + 'transform.LayerNorm.bias'], cfg['layer_norm_eps'])
    return F.linear(t, p['bert.embeddings.word_embeddings.weight'], p[c + 'bias'])


def bert_seq_cls_logits(p, cfg, input_ids, attention_mask=None, token_type_ids=None):
    """BertForSequenceClassification: pooler (first token, dense + tanh) then classifier."""
    x = bert_hidden(p, cfg, input_ids, attention_mask, token_type_ids)
    pooled = torch.tanh(F.linear(x[:, 0], p['bert.pooler.dense.weight'], p['bert.pooler.dense.bias']))
    return F.linear(pooled, p['classifier.weight'], p['classifier.bias'])


# ---------------------------------------------------------------- Llama / Qwen2

def rms_norm(x, w, eps):
    """LlamaRMSNorm: computed in float32, x * rsqrt(mean(x^2) + eps), then times the weight."""
    dtype = x.dtype
    x32 = x.to(torch.float32) if dtype != torch.float64 else x
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return w * x32.to(dtype)


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def rope_cos_sin(position_ids, dim, theta, dtype):
    """LlamaRotaryEmbedding (rope_type "default"): inv_freq over even indices, emb = cat(freqs, freqs)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    B = position_ids.shape[0]
    freqs = (inv_freq[None, :, None].expand(B, -1, 1) @ position_ids[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def causal_mask_4d(attention_mask, B, T, dtype):
    """_prepare_4d_causal_attention_mask_with_cache_position: 0 where attended, finfo.min elsewhere."""
    mn = torch.finfo(dtype).min
    mask = torch.triu(torch.full((T, T), mn, dtype=dtype), diagonal=1)[None, None].expand(B, 1, T, T).clone()
    if attention_mask is not None:
        padding = (mask + attention_mask[:, None, None, :].to(dtype)) == 0
        mask = mask.masked_fill(padding, mn)
    return mask


def llama_hidden(p, cfg, input_ids, attention_mask=None, position_ids=None):
    """LlamaModel / Qwen2Model. Biases are used where the checkpoint has them: Qwen2 has q/k/v biases,
    Llama with attention_bias has all four projections biased."""
    B, T = input_ids.shape
    E, H = cfg['hidden_size'], cfg['num_attention_heads']
    KV = cfg.get('num_key_value_heads') or H
    D = cfg.get('head_dim') or E // H
    eps = cfg['rms_norm_eps']
    if position_ids is None:
        position_ids = torch.arange(T).unsqueeze(0).expand(B, T)
    x = p['model.embed_tokens.weight'][input_ids]
    dtype = x.dtype
    cos, sin = rope_cos_sin(position_ids, D, cfg['rope_theta'], dtype)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # [B, 1, T, D]: broadcast over heads
    mask = causal_mask_4d(attention_mask, B, T, dtype)
    for i in range(cfg['num_hidden_layers']):
        L = f'model.layers.{i}.'
        lin = lambda t, n: F.linear(t, p[L + n + '.weight'], p.get(L + n + '.bias'))  # noqa: E731
        h = rms_norm(x, p[L + 'input_layernorm.weight'], eps)
        q = heads(lin(h, 'self_attn.q_proj'), H, D)
        k = heads(lin(h, 'self_attn.k_proj'), KV, D)
        v = heads(lin(h, 'self_attn.v_proj'), KV, D)
        q = q * cos + rotate_half(q) * sin  # apply_rotary_pos_emb, [B, H, T, D] layout
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head j reads key/value head j // (H / KV)
        k = k[:, :, None].expand(B, KV, H // KV, T, D).reshape(B, H, T, D)
        v = v[:, :, None].expand(B, KV, H // KV, T, D).reshape(B, H, T, D)
        w = torch.matmul(q, k.transpose(2, 3)) * D ** -0.5 + mask
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(dtype) if dtype != torch.float64 else F.softmax(w, dim=-1)
        x = x + lin(merge(torch.matmul(w, v)), 'self_attn.o_proj')
        h = rms_norm(x, p[L + 'post_attention_layernorm.weight'], eps)
        x = x + lin(F.silu(lin(h, 'mlp.gate_proj')) * lin(h, 'mlp.up_proj'), 'mlp.down_proj')
    return rms_norm(x, p['model.norm.weight'], eps)


def llama_lm_logits(p, cfg, input_ids, attention_mask=None, position_ids=None):
    """LlamaForCausalLM / Qwen2ForCausalLM: lm_head, or the embeddings when tie_word_embeddings."""
    head = p['model.embed_tokens.weight'] if cfg.get('tie_word_embeddings') else p['lm_head.weight']
    return F.linear(llama_hidden(p, cfg, input_ids, attention_mask, position_ids), head)


def llama_token_cls_logits(p, cfg, input_ids, attention_mask=None, position_ids=None):
    """LlamaForTokenClassification: score Linear with bias on every position."""
    return F.linear(llama_hidden(p, cfg, input_ids, attention_mask, position_ids), p['score.weight'], p['score.bias'])


# ---------------------------------------------------------------- losses (as transformers computes them)

def upcast(x):
    """transformers computes losses on logits.float(); float64 (used by the gradient checks) stays."""
    return x if x.dtype == torch.float64 else x.float()


def causal_lm_loss(logits, labels):
    """ForCausalLMLoss: logits at t predict labels at t+1; -100 ignored; mean over the rest."""
    V = logits.shape[-1]
    return F.cross_entropy(upcast(logits[..., :-1, :].reshape(-1, V)), labels[..., 1:].reshape(-1), ignore_index=-100)


def token_loss(logits, labels):
    """MLM and token classification: plain cross-entropy per position, -100 ignored."""
    return F.cross_entropy(upcast(logits.reshape(-1, logits.shape[-1])), labels.reshape(-1), ignore_index=-100)

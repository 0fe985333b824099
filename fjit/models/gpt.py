"""A small GPT-style language model in nanoGPT's layout (`transformer.wte`, `transformer.h.0
.attn.c_attn`, ...): learned token and position embeddings, pre-norm blocks of causal
self-attention and a GELU MLP, a final LayerNorm and a linear head.  The head is its own
Linear (nanoGPT ties it to `transformer.wte.weight`; load such a checkpoint by copying that
entry to `lm_head.weight`)."""
from __future__ import annotations

import math

import numpy as np

from .. import lax
from .. import numpy as jnp
from .. import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, dropout=0.0, bias=True):
        if n_embd % n_head:
            raise ValueError(f"CausalSelfAttention: n_embd {n_embd} must be divisible by "
                             f"n_head {n_head}")
        self.n_head, self.n_embd = n_head, n_embd
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        H = self.n_head
        q, k, v = jnp.split(self.c_attn(x), 3, axis=2)
        q, k, v = (t.reshape(B, T, H, C // H).transpose(0, 2, 1, 3) for t in (q, k, v))
        scores = (q @ jnp.swapaxes(k, -1, -2)) * (1.0 / math.sqrt(C // H))
        causal = jnp.asarray(np.tril(np.ones((T, T), bool)))
        scores = jnp.where(causal, scores, jnp.asarray(-jnp.inf, scores.dtype))
        scores = scores - lax.stop_gradient(scores.max(axis=-1, keepdims=True))
        weights = jnp.exp(scores)
        weights = self.attn_dropout(weights / weights.sum(axis=-1, keepdims=True))
        y = (weights @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class FeedForward(nn.Module):
    def __init__(self, n_embd, dropout=0.0, bias=True):
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, dropout=0.0, bias=True):
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = FeedForward(n_embd, dropout, bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias):
        self.wte = nn.Embedding(vocab_size, n_embd, weight_init=nn.initializers.normal(0.02))
        self.wpe = nn.Embedding(block_size, n_embd, weight_init=nn.initializers.normal(0.02))
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList([Block(n_embd, n_head, dropout, bias) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)

    def forward(self, idx):
        positions = jnp.arange(idx.shape[1])
        x = self.drop(self.wte(idx) + self.wpe(positions))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class GPT(nn.Module):
    """token ids (B, T), T <= block_size -> logits (B, T, vocab_size)."""

    def __init__(self, vocab_size, block_size, n_layer=4, n_head=4, n_embd=128, dropout=0.0,
                 bias=True):
        self.block_size = block_size
        self.transformer = _Transformer(vocab_size, block_size, n_layer, n_head, n_embd,
                                        dropout, bias)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False,
                                 weight_init=nn.initializers.normal(0.02))

    def forward(self, idx):
        idx = jnp.asarray(idx)
        if idx.ndim != 2 or idx.shape[1] > self.block_size:
            raise TypeError(f"GPT: expected token ids (B, T) with T <= block_size "
                            f"{self.block_size}, got {idx.shape}")
        return self.lm_head(self.transformer(idx))

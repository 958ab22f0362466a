"""Small models built from torch's own modules, shared by the model tests,
the distributed test and the demo's parity check."""
import math

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """Activations in every place a module can sit: a Sequential, a
    ModuleList, a ModuleDict and a plain attribute, one instance shared by two
    positions, and a learnable PReLU."""

    def __init__(self, d=16, h=32):
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(d, h), nn.GELU())
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(h, h), nn.SiLU()),
                                     nn.Sequential(nn.Linear(h, h), nn.PReLU(h, init=0.2))])
        self.acts = nn.ModuleDict({"mish": nn.Mish(), "tanh": nn.Tanh()})
        self.shared = nn.LeakyReLU(0.1)
        self.mid = nn.Linear(h, h)
        self.out = nn.Linear(h, d)
        self.gate = nn.Sigmoid()
        self.extra = nn.Sequential(self.shared, nn.Softplus(beta=2.0))

    def forward(self, x):
        y = self.inp(x)
        for b in self.blocks:
            y = b(y)
        y = self.acts["tanh"](self.acts["mish"](y)) + self.shared(y)
        y = self.extra(self.mid(y))
        return self.out(y) * self.gate(x)


class CNN(nn.Module):
    def __init__(self, c=3, classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(c, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.Hardswish(),
            nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU6(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.Hardsigmoid(), nn.Linear(16, classes))

    def forward(self, x):
        return self.head(self.pool(self.features(x)))


class SwiGLU(nn.Module):
    """LLaMA's feed-forward: w2(silu(w1 x) * w3 x), written with F.silu."""

    def __init__(self, d, hidden):
        super().__init__()
        self.w1 = nn.Linear(d, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d, bias=False)
        self.w3 = nn.Linear(d, hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class LlamaBlock(nn.Module):
    """Pre-norm attention (RMSNorm, causal scaled-dot-product attention with
    rotary embeddings) and a SwiGLU feed-forward."""

    def __init__(self, d=32, heads=4, hidden=64):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.RMSNorm(d)
        self.norm2 = nn.RMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.mlp = SwiGLU(d, hidden)

    @staticmethod
    def rotary(x):
        t, hd = x.shape[-2], x.shape[-1]
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=x.dtype, device=x.device) / hd))
        ang = torch.arange(t, dtype=x.dtype, device=x.device)[:, None] * inv[None, :]
        cos, sin = ang.cos(), ang.sin()
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(self.rotary(q), self.rotary(k), v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


class TinyLM(nn.Module):
    """Embedding, two LLaMA blocks, a head: what the demo trains."""

    def __init__(self, vocab=64, d=32, heads=4, hidden=64, layers=2):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([LlamaBlock(d, heads, hidden) for _ in range(layers)])
        self.norm = nn.RMSNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        x = self.emb(idx)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x))


def init_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Deterministic parameters, moved off the defaults (a PReLU slope of
    exactly 0.25, norm weights of exactly 1) so that no parameter sits at a
    special value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            r = torch.randn(p.shape, generator=g, dtype=torch.float64)
            if p.dim() >= 2:
                p.copy_(r / math.sqrt(p[0].numel()))
            else:
                p.copy_(p + 0.1 * r)
    return model

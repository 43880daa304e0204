"""The GPT of benchmarks/train_gpt.py: a nanoGPT-style decoder whose loss is computed per sample and per source.

Pre-norm blocks, tied embeddings, `scaled_dot_product_attention` (flash attention on GPU), GPT-2 initialisation.
Presets: `124m` (GPT-2 small: 12 x 768, vocab 50304), `20m` (6 x 512, vocab 8192: ~23.6M parameters), `10m`
(4 x 384, vocab 8192: ~10.6M) and `tiny` (2 x 64, the data's vocabulary; CI). The vocabulary is at least the
preset's and at least the data's, padded to a multiple of 128. The loss is reduced inside `forward`, per sample,
so the per-source losses cost one `scatter_add` and `torch.compile` fuses them with the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GPT", "PRESETS", "ModelConfig", "model_config"]


@dataclass(frozen=True, slots=True)
class ModelConfig:
    n_layer: int
    n_head: int
    n_embd: int
    vocab_size: int  # at least the data's vocabulary; the embedding is padded to a multiple of 128
    seq_len: int


# Minimum vocabulary per preset: 124m is GPT-2 small (50304 = 50257 padded); the small presets use 8192 so that
# the embedding does not dominate their parameter count (20m: 6 x 512 -> ~23M, 10m: 4 x 384 -> ~10M).
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "124m": (12, 12, 768, 50304),
    "20m": (6, 8, 512, 8192),
    "10m": (4, 6, 384, 8192),
    "tiny": (2, 4, 64, 0),
}


def model_config(preset: str, *, data_vocab: int, seq_len: int) -> ModelConfig:
    n_layer, n_head, n_embd, min_vocab = PRESETS[preset]
    vocab = max(min_vocab, data_vocab)
    vocab = (vocab + 127) // 128 * 128
    return ModelConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd, vocab_size=vocab, seq_len=seq_len)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.fc_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).contiguous().view(b, t, c))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.seq_len, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2's scaled init of the residual projections
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, labels: torch.Tensor, source_ids: torch.Tensor, num_sources: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (mean loss, per-source loss sums, per-source token counts)."""
        b, t = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied embeddings
        tok_loss = F.cross_entropy(
            logits.float().view(b * t, -1), labels.view(b * t), ignore_index=-100, reduction="none"
        ).view(b, t)
        valid = (labels != -100).float()
        sample_sum, sample_cnt = (tok_loss * valid).sum(1), valid.sum(1)
        src_sum = torch.zeros(num_sources, device=idx.device).scatter_add(0, source_ids, sample_sum)
        src_cnt = torch.zeros(num_sources, device=idx.device).scatter_add(0, source_ids, sample_cnt)
        return sample_sum.sum() / sample_cnt.sum().clamp(min=1.0), src_sum, src_cnt

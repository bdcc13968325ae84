"""The Hugging Face transformers backend: batched, KV-cached, left-padded sampling on CPU or GPU.

Why not ``model.generate``: it samples every row from one global RNG, so a request's samples would
depend on its batch mates (and so on sharding and actor count). This loop gives every sample its own
``torch.Generator`` seeded with the sample's seed and draws exactly one uniform per generated token
from it, picking the token by inverse CDF over the vocabulary in id order (an order that small
numeric differences between batch shapes cannot permute). A request's samples are then the same
whether it is generated alone or batched with others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from tracefactory.generation.engine import (
    FinishReason,
    GenerationBackend,
    GenerationRequest,
    GenerationResult,
    Sample,
    SamplingSpec,
)

logger = logging.getLogger(__name__)


@dataclass
class _Row:
    """One sample to generate: its place in the results and what it needs."""

    request_index: int
    sample_index: int
    prompt_ids: tuple[int, ...]
    seed: int
    sampling: SamplingSpec


class TransformersBackend(GenerationBackend):
    """Generates with ``AutoModelForCausalLM`` and a hand-written KV-cached sampling loop.

    Args:
        model: a Hub id or a model folder.
        device: torch device.
        dtype: ``auto`` or a torch dtype name (``float32``, ``bfloat16``).
        batch_size: samples decoded together.
        num_threads: torch CPU threads (one per process parallelises best on CPU).
    """

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str = "auto",
        batch_size: int = 64,
        num_threads: int = 1,
    ) -> None:
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(num_threads)
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype)
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.batch_size = batch_size
        pad = self.model.config.pad_token_id
        self.pad_id = int(pad) if pad is not None else 0  # masked out: any valid id works

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        rows = [
            _Row(r_index, s_index, request.prompt_ids, seed, request.sampling)
            for r_index, request in enumerate(requests)
            for s_index, seed in enumerate(request.seeds)
        ]
        # Similar lengths together: less padding. Order cannot change a sample (own generator).
        rows.sort(key=lambda row: len(row.prompt_ids))
        samples: dict[tuple[int, int], Sample] = {}
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            for row, sample in zip(batch, self._generate_batch(batch), strict=True):
                samples[row.request_index, row.sample_index] = sample
        return [
            GenerationResult(request.request_id, [samples[i, j] for j in range(request.n)])
            for i, request in enumerate(requests)
        ]

    @torch.inference_mode()
    def _generate_batch(self, rows: list[_Row]) -> list[Sample]:
        input_ids, attention_mask = self._left_pad([row.prompt_ids for row in rows])
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        generators = [torch.Generator().manual_seed(row.seed) for row in rows]
        temperature = torch.tensor([row.sampling.temperature for row in rows], device=self.device)
        top_p = torch.tensor([row.sampling.top_p for row in rows], device=self.device)
        max_new = max(row.sampling.max_new_tokens for row in rows)
        tokens: list[list[int]] = [[] for _ in rows]
        logprobs: list[list[float]] = [[] for _ in rows]
        reasons: list[FinishReason | None] = [None] * len(rows)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            logits_to_keep=1,
        )
        for _ in range(max_new):
            logits = out.logits[:, -1, :].float()  # (B, V)
            chosen, chosen_logprobs = _sample(logits, temperature, top_p, generators)
            for b, row in enumerate(rows):
                if reasons[b] is None:
                    reasons[b] = _append(row, tokens[b], logprobs[b], chosen[b], chosen_logprobs[b])
            if all(reason is not None for reason in reasons):
                break
            next_ids = torch.tensor(
                [t[-1] if r is None else self.pad_id for t, r in zip(tokens, reasons, strict=True)],
                device=self.device,
            )[:, None]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(rows), 1)], 1)
            position_ids = position_ids[:, -1:] + 1
            out = self.model(
                input_ids=next_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=out.past_key_values,
                use_cache=True,
            )
        return [Sample(t, r, lp) for t, r, lp in zip(tokens, reasons, logprobs, strict=True)]

    def _left_pad(self, prompts: list[tuple[int, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for b, prompt in enumerate(prompts):
            input_ids[b, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            attention_mask[b, width - len(prompt) :] = 1
        return input_ids.to(self.device), attention_mask.to(self.device)


def _append(
    row: _Row, tokens: list[int], logprobs: list[float], token: int, logprob: float
) -> FinishReason | None:
    """Add one generated token to a sample; return why it ended, if it did."""
    tokens.append(token)
    logprobs.append(logprob)
    if token in row.sampling.stop_token_ids:
        return FinishReason.STOP
    if len(tokens) >= row.sampling.max_new_tokens:
        return FinishReason.LENGTH
    return None


def _sample(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_p: torch.Tensor,
    generators: list[torch.Generator],
) -> tuple[list[int], list[float]]:
    """One token per row: greedy where temperature is 0, else temperature + top-p sampling with
    the row's own generator. Returns the tokens and their logprobs under the raw model."""
    model_logprobs = torch.log_softmax(logits, dim=-1)  # (B, V)
    greedy = temperature == 0
    scaled = logits / torch.where(greedy, torch.ones_like(temperature), temperature)[:, None]
    probs = torch.softmax(scaled, dim=-1)  # (B, V)
    # Top-p: keep the most likely tokens whose mass before them is < top_p; expressed as a
    # probability threshold so the kept set is chosen in id order, not in sorted order.
    sorted_probs, _ = torch.sort(probs, dim=-1, descending=True, stable=True)
    mass_before = sorted_probs.cumsum(-1) - sorted_probs
    kept = mass_before < top_p[:, None]  # (B, V), a prefix of each sorted row
    threshold = sorted_probs.gather(-1, (kept.sum(-1, keepdim=True) - 1).clamp(min=0))
    probs = torch.where(probs >= threshold, probs, torch.zeros_like(probs))
    cdf = probs.cumsum(-1)  # (B, V)
    uniforms = torch.stack([torch.rand((), generator=g) for g in generators]).to(cdf.device)
    targets = (uniforms * cdf[:, -1]).to(cdf.dtype)[:, None]
    sampled = torch.searchsorted(cdf, targets, right=True).clamp(max=cdf.shape[-1] - 1)[:, 0]
    chosen = torch.where(greedy, logits.argmax(-1), sampled)  # (B,)
    chosen_logprobs = model_logprobs.gather(-1, chosen[:, None])[:, 0]
    return chosen.tolist(), chosen_logprobs.tolist()

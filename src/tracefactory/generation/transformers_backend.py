"""The Hugging Face transformers backend: batched, KV-cached, left-padded sampling on CPU or GPU.

Why not ``model.generate``: it samples every row from one global RNG, so a request's samples would
depend on its batch mates (and so on sharding and actor count). This loop gives every sample its own
``torch.Generator`` seeded with the sample's seed and draws exactly one uniform per generated token
from it, picking the token by inverse CDF over the vocabulary in id order (an order that small
numeric differences between batch shapes cannot permute). A request's samples are then the same
whether it is generated alone or batched with others. Finished samples leave the batch (once a
quarter of its rows are done), so the long ones decode without paying for the short ones.

Prefix reuse (what vLLM's prefix caching gives the GPU path): a prompt's tokens but its last are
encoded once per call for every prompt that starts with them (the samples of one request, the cuts
of one roll-in), and, once ``keep_continuations`` is on, each sample's cache is kept for the next
call, whose prompts extend the samples (a search beam's next block). Each row then feeds only its
prompt's last token on top of a copied cache. The keys and values are those of a full encoding up
to float rounding; a sample changes only if its uniform lands within that rounding of a token's
CDF boundary (about 1e-7 in float32), which the tests' samples never do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from tracefactory.generation.engine import (
    GenerationBackend,
    GenerationRequest,
    GenerationResult,
    Sample,
    SamplingSpec,
)
from tracefactory.models import cache_keyword
from tracefactory.schemas import FinishReason

logger = logging.getLogger(__name__)

_Kv = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values (heads, tokens, head dim)


@dataclass
class _Row:
    """One sample to generate: its place in the results and what it needs."""

    request_index: int
    sample_index: int
    prompt_ids: tuple[int, ...]
    seed: int
    sampling: SamplingSpec


@dataclass
class _Decoding:
    """A batch's state after its prompts: last logits, cache, mask and positions."""

    logits: torch.Tensor  # (B, V) next-token logits
    cache: DynamicCache
    attention_mask: torch.Tensor  # (B, T)
    position_ids: torch.Tensor  # (B, 1) position of the last fed token
    prompt_width: int  # cache columns once the prompts are in (generated tokens follow)


class TransformersBackend(GenerationBackend):
    """Generates with ``AutoModelForCausalLM`` and a hand-written KV-cached sampling loop.

    Args:
        model: a Hub id or a model folder.
        device: torch device.
        dtype: ``auto`` or a torch dtype name (``float32``, ``bfloat16``).
        batch_size: samples decoded together.
        num_threads: torch CPU threads (one per process parallelises best on CPU).
        prefix_reuse: encode shared prompt prefixes once (off: every row encodes its prompt).
    """

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str = "auto",
        batch_size: int = 64,
        num_threads: int = 1,
        prefix_reuse: bool = True,
    ) -> None:
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(num_threads)
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype)
        self.cache_keyword = cache_keyword(self.model)
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.batch_size = batch_size
        pad = self.model.config.pad_token_id
        self.pad_id = int(pad) if pad is not None else 0  # masked out: any valid id works
        # A cache is only reusable when every layer keeps all positions (no sliding window).
        layers = DynamicCache(config=self.model.config).layers
        self.prefix_reuse = prefix_reuse and all(type(layer) is DynamicLayer for layer in layers)
        self.kept_bytes = 0  # keep_continuations' budget (0: keep nothing)
        self._kept: dict[tuple[int, ...], _Kv] = {}

    def keep_continuations(self, max_bytes: int) -> None:
        """Keep, until the next call, the cache of each sample (its prompt and its tokens but the
        last) up to ``max_bytes``, so a next prompt extending a sample feeds only its last token.

        For callers whose next requests continue this call's samples (block-wise search); a
        sample not kept (over budget) is simply encoded again.
        """
        self.kept_bytes = max_bytes if self.prefix_reuse else 0
        self._kept = {}

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        rows = [
            _Row(r_index, s_index, request.prompt_ids, seed, request.sampling)
            for r_index, request in enumerate(requests)
            for s_index, seed in enumerate(request.seeds)
        ]
        # Similar lengths together: less padding. Order cannot change a sample (own generator).
        rows.sort(key=lambda row: len(row.prompt_ids))
        prefixes = self._encode_prefixes({row.prompt_ids for row in rows})
        kept: dict[tuple[int, ...], _Kv] = {}
        samples: dict[tuple[int, int], Sample] = {}
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            for row, sample in zip(batch, self._generate_batch(batch, prefixes, kept), strict=True):
                samples[row.request_index, row.sample_index] = sample
        self._kept = kept
        return [
            GenerationResult(request.request_id, [samples[i, j] for j in range(request.n)])
            for i, request in enumerate(requests)
        ]

    def _encode_prefixes(self, prompts: set[tuple[int, ...]]) -> dict | None:
        """Each prompt's cache for all its tokens but the last (None: prefix reuse is off).

        A prompt's head is found among the last call's kept samples, or else is a prefix of the
        longest head that starts with it (its root), and each root is encoded once.
        """
        if not self.prefix_reuse:
            return None
        kept, self._kept = self._kept, {}  # what this call does not extend is freed now
        heads = {prompt: prompt[:-1] for prompt in prompts}
        found = {prompt: kept[head] for prompt, head in heads.items() if head in kept}
        missing = sorted({head for prompt, head in heads.items() if prompt not in found and head})
        roots = _prefix_roots(missing)
        encoded = self._encode(sorted(set(roots.values()), key=len))
        for prompt, head in heads.items():
            if prompt not in found:
                kv = encoded[roots[head]] if head else []
                found[prompt] = [(k[:, : len(head)], v[:, : len(head)]) for k, v in kv]
        return found

    @torch.inference_mode()
    def _encode(self, sequences: list[tuple[int, ...]]) -> dict[tuple[int, ...], _Kv]:
        """Keys and values of every sequence (copied out of the padded batch cache, which is
        then freed: memory holds the sequences' own tokens only)."""
        encoded = {}
        for start in range(0, len(sequences), self.batch_size):
            batch = sequences[start : start + self.batch_size]
            state = self._prefill(batch)
            for b, sequence in enumerate(batch):
                first = state.prompt_width - len(sequence)
                encoded[sequence] = [
                    (layer.keys[b, :, first:].clone(), layer.values[b, :, first:].clone())
                    for layer in state.cache.layers
                ]
        return encoded

    @torch.inference_mode()
    def _generate_batch(self, rows: list[_Row], prefixes: dict | None, kept: dict) -> list[Sample]:
        prompts = [row.prompt_ids for row in rows]
        state = self._prefill(prompts) if prefixes is None else self._feed_last(prompts, prefixes)
        generators = [torch.Generator().manual_seed(row.seed) for row in rows]
        temperature = torch.tensor([row.sampling.temperature for row in rows], device=self.device)
        top_p = torch.tensor([row.sampling.top_p for row in rows], device=self.device)
        max_new = max(row.sampling.max_new_tokens for row in rows)
        tokens: list[list[int]] = [[] for _ in rows]
        logprobs: list[list[float]] = [[] for _ in rows]
        reasons: list[FinishReason | None] = [None] * len(rows)
        live = list(range(len(rows)))  # the row of each cache row
        for _ in range(max_new):
            gens = [generators[b] for b in live]
            chosen, chosen_logprobs = _sample(state.logits, temperature, top_p, gens)
            for j, b in enumerate(live):
                if reasons[b] is None:
                    reasons[b] = _append(
                        rows[b], tokens[b], logprobs[b], chosen[j], chosen_logprobs[j]
                    )
            finished = [j for j, b in enumerate(live) if reasons[b] is not None]
            if len(finished) == len(live):
                break
            if 4 * len(finished) >= len(live):  # drop finished rows: later steps cost less
                self._keep(state, [(j, prompts[live[j]], tokens[live[j]]) for j in finished], kept)
                index = [j for j, b in enumerate(live) if reasons[b] is None]
                live = [live[j] for j in index]
                temperature, top_p = temperature[index], top_p[index]
                _select_rows(state, torch.tensor(index, device=self.device))
            next_ids = torch.tensor(
                [tokens[b][-1] if reasons[b] is None else self.pad_id for b in live],
                device=self.device,
            )[:, None]
            self._step(state, next_ids)
        self._keep(state, [(j, prompts[b], tokens[b]) for j, b in enumerate(live)], kept)
        return [Sample(t, r, lp) for t, r, lp in zip(tokens, reasons, logprobs, strict=True)]

    def _prefill(self, prompts: list[tuple[int, ...]]) -> _Decoding:
        """Encode whole left-padded prompts (the path without prefix reuse)."""
        input_ids, attention_mask = self._left_pad(prompts)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_keyword: cache},
        )
        logits = out.logits[:, -1, :].float()
        return _Decoding(logits, cache, attention_mask, position_ids[:, -1:], input_ids.shape[1])

    def _feed_last(self, prompts: list[tuple[int, ...]], prefixes: dict) -> _Decoding:
        """Stack the prompts' cached heads left-padded, then feed each prompt's last token."""
        lengths = [len(prompt) - 1 for prompt in prompts]
        width = max(lengths)
        attention_mask = torch.zeros((len(prompts), width + 1), dtype=torch.long)
        for b, length in enumerate(lengths):
            attention_mask[b, width - length :] = 1
        cache = self._stack([prefixes[prompt] for prompt in prompts], lengths, width)
        state = _Decoding(
            torch.empty(0),
            cache,
            attention_mask.to(self.device),
            torch.tensor(lengths, device=self.device)[:, None],
            width + 1,
        )
        last = torch.tensor([prompt[-1] for prompt in prompts], device=self.device)[:, None]
        self._step(state, last, grow=False)
        return state

    def _stack(self, heads: list[_Kv], lengths: list[int], width: int) -> DynamicCache:
        """One batch cache holding every row's head right-aligned in ``width`` positions."""
        if width == 0:
            return DynamicCache(config=self.model.config)
        sample = next(kv for kv in heads if kv)
        layers = []
        for index, (keys, values) in enumerate(sample):
            shape = (len(heads), keys.shape[0], width, keys.shape[-1])
            stacked_keys, stacked_values = keys.new_zeros(shape), values.new_zeros(shape)
            for b, (kv, length) in enumerate(zip(heads, lengths, strict=True)):
                if length:
                    stacked_keys[b, :, width - length :] = kv[index][0]
                    stacked_values[b, :, width - length :] = kv[index][1]
            layers.append((stacked_keys, stacked_values))
        return DynamicCache(layers, config=self.model.config)

    def _step(self, state: _Decoding, input_ids: torch.Tensor, grow: bool = True) -> None:
        """Feed one token per row on top of the cache; ``grow=False``: the mask already has its
        column and the positions are already the token's."""
        if grow:
            ones = state.attention_mask.new_ones(len(input_ids), 1)
            state.attention_mask = torch.cat([state.attention_mask, ones], 1)
            state.position_ids = state.position_ids + 1
        out = self.model(
            input_ids=input_ids,
            attention_mask=state.attention_mask,
            position_ids=state.position_ids,
            use_cache=True,
            **{self.cache_keyword: state.cache},
        )
        state.logits = out.logits[:, -1, :].float()

    def _keep(self, state: _Decoding, samples: list[tuple[int, tuple, list[int]]], kept: dict):
        """Copy finished samples' caches into ``kept`` while the budget lasts. A sample is (cache
        row, prompt, tokens); its cache holds the prompt and the tokens but the last (a finished
        row is fed pad ids after its last token)."""
        if not self.kept_bytes:
            return
        used = sum(k.nbytes + v.nbytes for kv in kept.values() for k, v in kv)
        for row, prompt, generated in samples:
            first = state.prompt_width - len(prompt)
            end = state.prompt_width + len(generated) - 1
            kv = [
                (layer.keys[row, :, first:end].clone(), layer.values[row, :, first:end].clone())
                for layer in state.cache.layers
            ]
            size = sum(k.nbytes + v.nbytes for k, v in kv)
            if used + size > self.kept_bytes:
                return
            kept[prompt + tuple(generated[:-1])] = kv
            used += size

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


def _select_rows(state: _Decoding, index: torch.Tensor) -> None:
    """Keep only the cache rows ``index`` (the unfinished samples)."""
    state.cache.batch_select_indices(index)
    state.attention_mask = state.attention_mask[index]
    state.position_ids = state.position_ids[index]


def _prefix_roots(heads: list[tuple[int, ...]]) -> dict[tuple[int, ...], tuple[int, ...]]:
    """For each of the sorted ``heads``, the longest head that starts with it (its root).

    Every extension of a sequence sorts right after it, so a head's root is its successor's root
    when the successor extends it, else the head itself.
    """
    roots: dict[tuple[int, ...], tuple[int, ...]] = {}
    for i in reversed(range(len(heads))):
        head, after = heads[i], heads[i + 1] if i + 1 < len(heads) else ()
        roots[head] = roots[after] if after[: len(head)] == head else head
    return roots


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

"""Prefix reuse in the transformers backend, with and without, on the same requests in one process:
(a) roll-outs (generated tokens/s when every cut of a roll-in re-encodes its prefix vs when the
roll-in is encoded once and its cache branched at each cut); (b) VGS block generation (seconds in
the block sampler when every block re-encodes its beam's prefix vs when a beam keeps its cache
from block to block). Both check the samples are identical token for token.

The workload is the embedded default's: the shipped tiny policy, roll-ins of up to 224 tokens
(4 per problem), 3 cuts per roll-in (sqrt), 1 roll-out per cut, batch 128; the search at budget 16,
beam width 2, line blocks of at most 40 tokens, one child per parent, batch 256. The search's
scorer is a fixed function of the tokens (the value model is not what is measured).

Run: .venv/bin/python benchmarks/bench_prefix_reuse.py [--problems 32 --search-problems 16]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tracefactory.generation.branch_points import draw_cut_positions  # noqa: E402
from tracefactory.generation.config import SamplingConfig  # noqa: E402
from tracefactory.generation.engine import GenerationRequest  # noqa: E402
from tracefactory.generation.templates import encode_prompt  # noqa: E402
from tracefactory.generation.transformers_backend import TransformersBackend  # noqa: E402
from tracefactory.models import load_tokenizer  # noqa: E402
from tracefactory.search.beam import beam_search  # noqa: E402
from tracefactory.search.compute import model_shape  # noqa: E402
from tracefactory.search.config import SearchConfig, SearchSettings, Selection  # noqa: E402
from tracefactory.search.engines import delimiter_token_ids  # noqa: E402
from tracefactory.search.interfaces import ScoreItem  # noqa: E402
from tracefactory.search.sampling import EngineBlockSampler  # noqa: E402
from tracefactory.seeds import derive_seed  # noqa: E402
from tracefactory.toyworld import POLICY_DIR  # noqa: E402

SAMPLING = SamplingConfig()  # temperature 1, top-p 1, 224 tokens: the embedded default


def problems(count: int) -> list[str]:
    return [f"{i % 5 + 2}+{i % 3 + 2}*{i % 4 + 2}-{i % 6 + 1}=? (mod 7)" for i in range(count)]


def rollout_requests(backend, tokenizer, count: int) -> list[GenerationRequest]:
    """The rollout stage's requests for ``count`` problems' roll-ins (4 each)."""
    prompts = [tuple(encode_prompt(tokenizer, "tiny", text)) for text in problems(count)]
    spec = SAMPLING.spec(tokenizer)
    rollins = backend.generate(
        [GenerationRequest(str(i), p, (4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3), spec)
         for i, p in enumerate(prompts)]
    )  # fmt: skip
    requests = []
    for prompt, result in zip(prompts, rollins, strict=True):
        for k, sample in enumerate(result.samples):
            rollin_id = f"{prompt}/{k}"
            cuts = draw_cut_positions(len(sample.token_ids), 3, "sqrt", derive_seed(0, rollin_id))
            for c, position in enumerate(cuts):
                room = SAMPLING.spec(tokenizer, max(1, SAMPLING.max_response_tokens - position))
                context = prompt + tuple(sample.token_ids[:position])
                seed = derive_seed(0, "rollout", rollin_id, c, 0)
                requests.append(GenerationRequest(f"{rollin_id}/{c}", context, (seed,), room))
    return requests


def timed_rollouts(backend, requests) -> tuple[float, list]:
    start = time.perf_counter()
    results = backend.generate(requests)
    return time.perf_counter() - start, [s.token_ids for r in results for s in r.samples]


class LengthScorer:
    """Value = a fixed function of the tokens (deterministic, no model)."""

    tokens_processed, flops = 0, 0.0

    def score(self, items: list[ScoreItem]) -> list[float]:
        return [(sum(i.token_ids) * 7919 % 1000) / 1000 for i in items]

    def retain(self, node_ids: set[int]) -> None:
        pass


class TimedSampler:
    """The engine sampler, timing its calls."""

    def __init__(self, sampler: EngineBlockSampler) -> None:
        self.sampler, self.seconds = sampler, 0.0

    def __call__(self, requests, delimited: bool = True):
        start = time.perf_counter()
        blocks = self.sampler(requests, delimited)
        self.seconds += time.perf_counter() - start
        return blocks


def timed_search(backend, tokenizer, count: int) -> tuple[float, list, int]:
    settings = SearchSettings(
        search=SearchConfig(beam_width=2, block_tokens=40, max_children_per_parent=1),
        budget=16,
        selection=Selection.VALUE,
        max_response_tokens=SAMPLING.max_response_tokens,
    )
    delimiters = delimiter_token_ids(tokenizer, "\n")
    sampler = TimedSampler(EngineBlockSampler(backend, tokenizer, SAMPLING, delimiters))
    prompts = [tuple(encode_prompt(tokenizer, "tiny", text)) for text in problems(count)]
    traces, tally = beam_search(
        prompts, [str(i) for i in range(count)], settings, sampler, LengthScorer(),
        model_shape(backend.model), run_seed=0,
    )  # fmt: skip
    return sampler.seconds, [[t.response_ids for t in per] for per in traces], tally.gen_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=32, help="roll-out workload: problems")
    parser.add_argument("--search-problems", type=int, default=16, help="VGS workload: problems")
    args = parser.parse_args()
    tokenizer = load_tokenizer(str(POLICY_DIR))
    reuse = TransformersBackend(str(POLICY_DIR), batch_size=128)
    plain = TransformersBackend(str(POLICY_DIR), batch_size=128, prefix_reuse=False)
    requests = rollout_requests(plain, tokenizer, args.problems)
    plain_s, plain_ids = timed_rollouts(plain, requests)
    reuse_s, reuse_ids = timed_rollouts(reuse, requests)
    tokens = sum(len(ids) for ids in plain_ids)
    print(f"roll-outs: {len(requests)} requests, {tokens:,} generated tokens")
    print(f"  re-encoding each prefix  {plain_s:6.2f} s  {tokens / plain_s:8,.0f} tokens/s")
    print(f"  prefix reuse             {reuse_s:6.2f} s  {tokens / reuse_s:8,.0f} tokens/s")
    print(f"  ratio {plain_s / reuse_s:.2f}x  identical samples: {plain_ids == reuse_ids}")
    reuse.batch_size = plain.batch_size = 256  # the evaluate policy's batch
    plain_s, plain_traces, tokens = timed_search(plain, tokenizer, args.search_problems)
    reuse_s, reuse_traces, _ = timed_search(reuse, tokenizer, args.search_problems)
    print(f"VGS blocks: {args.search_problems} problems, {tokens:,} generated tokens")
    print(f"  re-encoding each beam    {plain_s:6.2f} s  {tokens / plain_s:8,.0f} tokens/s")
    print(f"  kept cache               {reuse_s:6.2f} s  {tokens / reuse_s:8,.0f} tokens/s")
    print(f"  ratio {plain_s / reuse_s:.2f}x  identical traces: {plain_traces == reuse_traces}")


if __name__ == "__main__":
    main()

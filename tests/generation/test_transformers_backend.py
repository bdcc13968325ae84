"""The transformers backend: per-sample seeds, batch independence, greedy parity, finish reasons."""

from __future__ import annotations

import pytest
import torch

from tracefactory.generation.engine import GenerationRequest, SamplingSpec
from tracefactory.generation.transformers_backend import TransformersBackend
from tracefactory.models import load_tokenizer
from tracefactory.schemas import FinishReason


@pytest.fixture(scope="module")
def backend(tiny_model_dir) -> TransformersBackend:
    return TransformersBackend(str(tiny_model_dir), batch_size=4)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))


def _request(tokenizer, text: str, seeds, max_new: int = 30, **sampling) -> GenerationRequest:
    spec = SamplingSpec(max_new, stop_token_ids=(tokenizer.eos_token_id,), **sampling)
    ids = tuple(tokenizer.encode(text, add_special_tokens=False))
    return GenerationRequest(text, ids, tuple(seeds), spec)


def test_samples_identical_alone_or_batched_with_others(backend, tokenizer):
    target = _request(tokenizer, "3+4*2=?\n<think>\n", seeds=[11, 12, 13])
    others = [
        _request(tokenizer, "1-2=?\n<think>\n", seeds=[5, 6]),
        _request(tokenizer, "6*6*6*6+5-4=? (mod 7)\n<think>\n", seeds=[7], temperature=0.7),
    ]
    alone = backend.generate([target])[0]
    batched = backend.generate([others[0], target, others[1]])[1]  # batch_size 4: 6 rows, 2 batches
    assert [s.token_ids for s in alone.samples] == [s.token_ids for s in batched.samples]
    assert [s.finish_reason for s in alone.samples] == [s.finish_reason for s in batched.samples]
    for ours, theirs in zip(alone.samples, batched.samples, strict=True):  # float noise only
        assert ours.logprobs == pytest.approx(theirs.logprobs, abs=1e-4)
    for seed, sample in zip(target.seeds, alone.samples, strict=True):  # one seed per sample
        single = _request(tokenizer, "3+4*2=?\n<think>\n", seeds=[seed])
        assert [s.token_ids for s in backend.generate([single])[0].samples] == [sample.token_ids]


def test_same_seed_same_tokens_other_seed_other_tokens(backend, tokenizer):
    first = backend.generate([_request(tokenizer, "2+2=?\n<think>\n", [1, 2])])[0]
    again = backend.generate([_request(tokenizer, "2+2=?\n<think>\n", [1, 2])])[0]
    other = backend.generate([_request(tokenizer, "2+2=?\n<think>\n", [3, 4])])[0]
    assert [s.token_ids for s in first.samples] == [s.token_ids for s in again.samples]
    assert [s.token_ids for s in first.samples] != [s.token_ids for s in other.samples]


def test_greedy_matches_hf_generate_with_left_padding(backend, tokenizer):
    texts = ["3+4*2=?\n<think>\n", "1=?\n<think>\n"]
    requests = [_request(tokenizer, t, [0], max_new=12, temperature=0.0) for t in texts]
    ours = [r.samples[0].token_ids for r in backend.generate(requests)]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = backend.model.generate(
            **batch, do_sample=False, max_new_tokens=12, pad_token_id=tokenizer.pad_token_id
        )
    width = batch["input_ids"].shape[1]
    for row, tokens in enumerate(ours):
        expected = out[row, width:].tolist()
        assert tokens == expected[: len(tokens)]


def test_finish_reasons_and_lengths(backend, tokenizer):
    result = backend.generate([_request(tokenizer, "5-3=?\n<think>\n", range(12), max_new=25)])[0]
    for sample in result.samples:
        if sample.finish_reason is FinishReason.STOP:
            assert sample.token_ids[-1] == tokenizer.eos_token_id
            assert tokenizer.eos_token_id not in sample.token_ids[:-1]
        else:
            assert len(sample.token_ids) == 25
            assert tokenizer.eos_token_id not in sample.token_ids
        assert len(sample.logprobs) == len(sample.token_ids)
        assert all(lp <= 0 for lp in sample.logprobs)


def test_tiny_top_p_is_greedy(backend, tokenizer):
    greedy = backend.generate([_request(tokenizer, "4*4=?\n<think>\n", [1], temperature=0.0)])
    nucleus = backend.generate([_request(tokenizer, "4*4=?\n<think>\n", [9], top_p=1e-6)])
    assert greedy[0].samples[0].token_ids == nucleus[0].samples[0].token_ids


def _fed_tokens(backend: TransformersBackend) -> list[int]:
    """A counter of the token positions fed to the model (padding included), via a real hook."""
    fed = [0]

    def count(module, args, kwargs):
        fed[0] += kwargs["input_ids"].numel()

    backend.model.register_forward_pre_hook(count, with_kwargs=True)
    return fed


def _rollout_requests(backend, tokenizer) -> list[GenerationRequest]:
    """Roll-out requests as the rollout stage makes them: each roll-in cut at three positions,
    two seeds per cut, next to a one-token prompt (nothing to reuse)."""
    texts = ["3+4*2=?\n<think>\n", "6*6-1=? (mod 7)\n<think>\n"]
    rollins = backend.generate([_request(tokenizer, t, [1, 2], max_new=40) for t in texts])
    requests = [_request(tokenizer, "5", [3], max_new=10)]
    for text, result in zip(texts, rollins, strict=True):
        prompt = tuple(tokenizer.encode(text, add_special_tokens=False))
        for k, sample in enumerate(result.samples):
            n = len(sample.token_ids)
            for cut in sorted({1, n // 2, n - 1}):
                spec = SamplingSpec(60 - cut, stop_token_ids=(tokenizer.eos_token_id,))
                context = prompt + tuple(sample.token_ids[:cut])
                requests.append(GenerationRequest(f"{k}/{cut}", context, (cut, 100 + cut), spec))
    return requests


def test_prefix_reuse_gives_identical_rollouts_and_encodes_each_rollin_once(tiny_model_dir):
    """Identical token ids with and without prefix reuse. Reuse changes float rounding only
    (about 1e-7 in float32 on CPU); a sample would differ only if one of its uniforms fell
    within that of a token's CDF boundary, which these seeds do not."""
    plain = TransformersBackend(str(tiny_model_dir), batch_size=4, prefix_reuse=False)
    reuse = TransformersBackend(str(tiny_model_dir), batch_size=4)
    assert reuse.prefix_reuse
    tokenizer = load_tokenizer(str(tiny_model_dir))
    requests = _rollout_requests(plain, tokenizer)
    plain_fed, reuse_fed = _fed_tokens(plain), _fed_tokens(reuse)
    expected, got = plain.generate(requests), reuse.generate(requests)
    for ours, theirs in zip(expected, got, strict=True):
        assert [s.token_ids for s in ours.samples] == [s.token_ids for s in theirs.samples]
        assert [s.finish_reason for s in ours.samples] == [s.finish_reason for s in theirs.samples]
        for a, b in zip(ours.samples, theirs.samples, strict=True):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
    assert reuse_fed[0] < plain_fed[0] * 0.8


def test_kept_continuations_give_identical_blocks_and_feed_one_token_per_row(tiny_model_dir):
    """A next call whose prompts extend the last call's samples feeds each row only its last
    prompt token (plus its generated tokens), with the same samples as re-encoding."""
    plain = TransformersBackend(str(tiny_model_dir), batch_size=4, prefix_reuse=False)
    reuse = TransformersBackend(str(tiny_model_dir), batch_size=4)
    reuse.keep_continuations(1 << 30)
    tokenizer = load_tokenizer(str(tiny_model_dir))
    first = [_request(tokenizer, t, [1, 2], max_new=8) for t in ("2+2=?\n", "1*3-6=?\n")]
    expected, got = plain.generate(first), reuse.generate(first)
    assert [s.token_ids for r in expected for s in r.samples] == [
        s.token_ids for r in got for s in r.samples
    ]
    spec = SamplingSpec(8, stop_token_ids=(tokenizer.eos_token_id,))
    second = [
        GenerationRequest(f"{i}/{k}", request.prompt_ids + tuple(s.token_ids), (7 + k,), spec)
        for i, (request, result) in enumerate(zip(first, got, strict=True))
        for k, s in enumerate(result.samples)
    ]
    fed = _fed_tokens(reuse)
    expected, got = plain.generate(second), reuse.generate(second)
    assert [r.samples[0].token_ids for r in expected] == [r.samples[0].token_ids for r in got]
    rows, longest = len(second), max(len(r.samples[0].token_ids) for r in got)
    assert fed[0] <= rows * longest  # a first token per row, then one per row per step


def test_finished_rows_leave_the_batch_and_the_rest_is_unchanged(tiny_model_dir, tokenizer):
    """Three samples end after 2 tokens, one runs 30: the later steps feed one row, not four,
    and the long sample is the one generated alone."""
    backend = TransformersBackend(str(tiny_model_dir), batch_size=4)
    prompt = tuple(tokenizer.encode("3+4*2=?\n<think>\n", add_special_tokens=False))
    short = GenerationRequest("short", prompt, (1, 2, 3), SamplingSpec(2))
    long = GenerationRequest("long", prompt, (4,), SamplingSpec(30))
    fed = _fed_tokens(backend)
    together = backend.generate([short, long])
    steps_all_rows = 4 * 29
    assert fed[0] < len(prompt) + steps_all_rows / 2
    alone = backend.generate([long])
    assert together[1].samples[0].token_ids == alone[0].samples[0].token_ids
    assert len(alone[0].samples[0].token_ids) == 30

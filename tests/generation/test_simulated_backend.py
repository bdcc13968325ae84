"""The simulated engine: deterministic per seed, lengths as its parameters say, answers the
grader reads."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tracefactory.errors import ConfigError
from tracefactory.generation.config import PolicyConfig, SimulationConfig
from tracefactory.generation.engine import (
    FinishReason,
    GenerationRequest,
    SamplingSpec,
    load_backend,
)
from tracefactory.generation.simulated_backend import LengthModel, SimulatedBackend
from tracefactory.generation.templates import encode_prompt
from tracefactory.models import load_tokenizer

PROBLEMS = [(f"{i}+{i % 5}*3=? (mod 7)", str((i + (i % 5) * 3) % 7)) for i in range(40)]
CONFIG = SimulationConfig(median_tokens_right=300, median_tokens_wrong=900, length_sigma=0.6)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tracefactory:tiny")


@pytest.fixture(scope="module")
def backend(tokenizer):
    return SimulatedBackend(tokenizer, "tiny", PROBLEMS, CONFIG)


def _requests(tokenizer, cap: int, samples: int, prefix: int = 0) -> list[GenerationRequest]:
    spec = SamplingSpec(max_new_tokens=cap, stop_token_ids=(tokenizer.eos_token_id,))
    requests = []
    for i, (problem, _) in enumerate(PROBLEMS):
        prompt = encode_prompt(tokenizer, "tiny", problem) + [tokenizer.encode("a")[0]] * prefix
        seeds = tuple(1000 * i + j for j in range(samples))
        requests.append(GenerationRequest(f"r{i}", tuple(prompt), seeds, spec))
    return requests


def test_same_seed_same_trace_whatever_the_batch(backend, tokenizer):
    requests = _requests(tokenizer, cap=4000, samples=4)
    together = backend.generate(requests)
    alone = [backend.generate([request])[0] for request in reversed(requests)][::-1]
    again = SimulatedBackend(tokenizer, "tiny", PROBLEMS, CONFIG).generate(requests)
    assert together == alone == again
    other_seeds = [
        GenerationRequest(r.request_id, r.prompt_ids, tuple(s + 1 for s in r.seeds), r.sampling)
        for r in requests
    ]
    assert backend.generate(other_seeds) != together


def test_lengths_follow_the_log_normal_and_the_cap_takes_the_tail(backend, tokenizer):
    cap = 1200
    results = backend.generate(_requests(tokenizer, cap=cap, samples=100))
    samples = [s for result in results for s in result.samples]
    lengths = np.array([len(s.token_ids) for s in samples])
    at_cap = np.array([s.finish_reason == FinishReason.LENGTH for s in samples])
    assert (lengths[at_cap] == cap).all() and (lengths[~at_cap] <= cap).all()

    # Expected share at the cap, from the per-problem P(right) and the two log-normals.
    model = LengthModel(CONFIG)
    profiles = list(backend.profiles.values())
    expected = np.mean(
        [
            p.p_right * (1 - model.cdf(cap, True)) + (1 - p.p_right) * (1 - model.cdf(cap, False))
            for p in profiles
        ]
    )
    assert expected > 0.05  # the test really exercises the cap
    assert at_cap.mean() == pytest.approx(expected, abs=0.02)

    # Right traces (answer = gold) far below the cap: their quantiles are the log-normal's.
    text = tokenizer.batch_decode([s.token_ids for s in samples])
    golds = [p.answer for p in profiles for _ in range(100)]
    right = np.array([f"\\boxed{{{gold}}}" in t for t, gold in zip(text, golds, strict=True)])
    for q in (0.25, 0.5, 0.75):
        measured = np.quantile(lengths[right], q)
        assert measured == pytest.approx(model.quantile(q, True), rel=0.06)


def test_traces_end_in_think_and_a_boxed_answer_from_a_few_per_problem(backend, tokenizer):
    results = backend.generate(_requests(tokenizer, cap=100_000, samples=60))
    right, several = [], 0
    for result, profile in zip(results, backend.profiles.values(), strict=True):
        answers = []
        for sample in result.samples:
            assert sample.finish_reason == FinishReason.STOP
            assert sample.token_ids[-1] == tokenizer.eos_token_id
            text = tokenizer.decode(sample.token_ids, skip_special_tokens=True)
            thinking, _, after = text.partition("</think>")
            assert "\\boxed" not in thinking and "</think>" not in after
            answers.append(re.fullmatch(r"\n\\boxed\{(.+)\}", after).group(1))
        assert set(answers) <= {profile.answer, *profile.wrong}
        several += len(set(answers)) > 1
        right.extend(answer == profile.answer for answer in answers)
    assert several > len(results) / 2  # wrong answers come from a few distinct ones
    expected = np.mean([p.p_right for p in backend.profiles.values()])
    assert np.mean(right) == pytest.approx(expected, abs=0.03)


def test_a_roll_out_continues_past_its_prefix(backend, tokenizer):
    prefix = 700  # above the right traces' median: their totals are drawn beyond it
    fresh = backend.generate(_requests(tokenizer, cap=100_000, samples=20))
    continued = backend.generate(_requests(tokenizer, cap=100_000, samples=20, prefix=prefix))
    fresh_total = np.median([len(s.token_ids) for r in fresh for s in r.samples])
    continued_total = [prefix + len(s.token_ids) for r in continued for s in r.samples]
    assert min(continued_total) > prefix
    assert np.median(continued_total) > fresh_total


def test_a_context_from_another_problem_is_one_clear_error(backend, tokenizer):
    spec = SamplingSpec(max_new_tokens=10)
    stranger = GenerationRequest("x", tuple(tokenizer.encode("9*9=? (mod 5)\n")), (1,), spec)
    with pytest.raises(ConfigError, match="simulation.problems_dir"):
        backend.generate([stranger])


def test_lengths_quantile_inverts_cdf():
    model = LengthModel(CONFIG)
    for q in (0.1, 0.5, 0.9):
        assert model.cdf(model.quantile(q, False), False) == pytest.approx(q)
    assert model.quantile(0.5, True) == pytest.approx(300)
    assert math.isclose(model.quantile(0.5, False), 900)


def test_load_backend_builds_it_from_the_problems_table(make_problems, tmp_path, tokenizer):
    problems = make_problems(tmp_path / "problems", 5)
    simulation = CONFIG.model_copy(update={"problems_dir": str(problems)})
    policy = PolicyConfig(model="tracefactory:tiny", backend="simulated", simulation=simulation)
    engine = load_backend(policy)
    prompt = tuple(encode_prompt(tokenizer, "tiny", "1+1"))  # a val problem of the table
    spec = SamplingSpec(max_new_tokens=50_000)
    (result,) = engine.generate([GenerationRequest("v0", prompt, (7,), spec)])
    assert result.samples[0].finish_reason == FinishReason.STOP
    with pytest.raises(ConfigError, match="simulation"):
        load_backend(PolicyConfig(model="tracefactory:tiny", backend="simulated"))


def test_an_unset_simulation_leaves_the_policy_dump_as_before():
    assert "simulation" not in PolicyConfig().model_dump(mode="json")

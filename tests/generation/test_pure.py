"""Pure pieces: seeds, branch points, templates, policies, the vLLM request mapping."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tracefactory.errors import ConfigError
from tracefactory.generation.branch_points import cut_weights, draw_cut_positions
from tracefactory.generation.config import PolicyConfig
from tracefactory.generation.engine import (
    GenerationRequest,
    SamplingSpec,
    failure_counts,
)
from tracefactory.generation.rollin import assign_policies
from tracefactory.generation.templates import encode_prompt, format_prompt
from tracefactory.generation.vllm_backend import (
    CPU_KVCACHE_GIB,
    checkpoint_dtype,
    cpu_environment,
    engine_kwargs,
    finish_reason_of,
    fits_context,
    sampling_kwargs,
)
from tracefactory.models import (
    load_tokenizer,
    require_same_tokenizer,
    resolve_model,
    tokenizer_hash,
)
from tracefactory.schemas import FinishReason
from tracefactory.seeds import derive_seed, row_id, unit_interval


def test_derive_seed_is_stable_and_distinct():
    assert derive_seed(1234, "rollin", "p1", 0) == derive_seed(1234, "rollin", "p1", 0)
    seeds = {derive_seed(1234, "rollin", "p1", i) for i in range(100)}
    assert len(seeds) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(1, "rollin", "p1", 0) != derive_seed(2, "rollin", "p1", 0)
    # A pinned value: a change of the derivation silently changes every dataset.
    assert row_id("p1", "tiny", 0, 5) == row_id("p1", "tiny", 0, 5)
    assert 0 <= unit_interval(7, "x") < 1


def test_assign_policies_follows_weights():
    pool = [PolicyConfig(name="a", weight=3.0), PolicyConfig(name="b", weight=1.0)]
    picks = [n for i in range(500) for n in assign_policies(0, f"p{i}", 4, pool)]
    share = picks.count("a") / len(picks)
    assert 0.7 < share < 0.8
    assert assign_policies(0, "p1", 14, pool) == assign_policies(0, "p1", 14, pool)


@pytest.mark.parametrize("distribution", ["uniform", "sqrt", "inverse_sqrt"])
def test_cut_positions_are_distinct_sorted_inside_and_seeded(distribution):
    cuts = draw_cut_positions(50, 4, distribution, seed=3)
    assert cuts == sorted(set(cuts)) and len(cuts) == 4
    assert all(1 <= c <= 49 for c in cuts)
    assert cuts == draw_cut_positions(50, 4, distribution, seed=3)


def test_short_rollins_get_every_position_or_none():
    assert draw_cut_positions(3, 4, "sqrt", seed=0) == [1, 2]
    assert draw_cut_positions(1, 4, "sqrt", seed=0) == []
    assert draw_cut_positions(0, 4, "uniform", seed=0) == []


def test_sqrt_distribution_matches_its_formula():
    weights = cut_weights(11, "sqrt")
    expected = np.sqrt(np.arange(1, 11)) / np.sqrt(np.arange(1, 11)).sum()
    np.testing.assert_allclose(weights, expected)
    counts = np.zeros(11)
    for seed in range(4000):
        counts[draw_cut_positions(11, 1, "sqrt", seed)[0]] += 1
    np.testing.assert_allclose(counts[1:] / 4000, expected, atol=0.02)
    with pytest.raises(ConfigError, match="unknown cut distribution"):
        cut_weights(5, "cubic")


def test_templates():
    assert format_prompt("tiny", "1+1") == "1+1\n<think>\n"
    r1 = format_prompt("r1", "What is 1+1?")
    assert r1.startswith("<｜begin▁of▁sentence｜><｜User｜>What is 1+1? Please think")
    assert r1.endswith("within \\boxed{}.<｜Assistant｜><think>\n")
    with pytest.raises(ConfigError, match="unknown prompt template"):
        format_prompt("chatml", "x")


def test_tiny_tokenizer_round_trips_spaces_and_newlines(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    text = "3 + 4*2=? (mod 7)\n<think>\n"
    ids = encode_prompt(tokenizer, "tiny", "3 + 4*2=? (mod 7)")
    assert tokenizer.decode(ids) == text
    assert len(tokenizer_hash(tokenizer)) == 64


def test_tokenizer_mismatch_and_unknown_models_fail_clearly():
    with pytest.raises(ConfigError, match="cannot be reused across vocabularies"):
        require_same_tokenizer("rollins", "a" * 64, "some/model", "b" * 64)
    with pytest.raises(ConfigError, match="unknown shipped model"):
        resolve_model("tracefactory:huge")
    assert resolve_model("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B").startswith("deepseek")


def test_requests_reject_empty_prompts_and_bad_sampling():
    with pytest.raises(ConfigError, match="empty prompt"):
        GenerationRequest("r", (), (1,), SamplingSpec(4))
    with pytest.raises(ConfigError, match="top_p"):
        SamplingSpec(4, top_p=0.0)


def test_vllm_mapping_without_vllm():
    spec = SamplingSpec(100, temperature=0.6, top_p=0.95, stop_token_ids=(2, 7))
    assert sampling_kwargs(spec, seed=42) == {
        "n": 1,
        "seed": 42,
        "max_tokens": 100,
        "temperature": 0.6,
        "top_p": 0.95,
        "stop_token_ids": [2, 7],
        "ignore_eos": True,
        "detokenize": False,
        "logprobs": None,
    }
    assert sampling_kwargs(spec, 1, logprobs=True)["logprobs"] == 0
    assert finish_reason_of("stop") is FinishReason.STOP
    assert finish_reason_of("length") is FinishReason.LENGTH
    with pytest.raises(RuntimeError, match="abort"):
        finish_reason_of("abort")


def test_vllm_engine_settings_differ_only_where_cpu_needs_it():
    tiny = resolve_model("tracefactory:tiny")
    gpu = engine_kwargs(tiny, on_cpu=False, max_model_len=128)
    cpu = engine_kwargs(tiny, on_cpu=True, max_model_len=128)
    assert gpu["dtype"] == "auto" and gpu["gpu_memory_utilization"] == 0.9
    assert cpu["dtype"] == "float32" == checkpoint_dtype(tiny)  # never vLLM's bfloat16 downcast
    assert (
        "gpu_memory_utilization" not in cpu
    )  # a share of RAM there: the KV cache env var sizes it
    assert cpu["enable_chunked_prefill"] is False and cpu["enforce_eager"] is True
    assert engine_kwargs(tiny, on_cpu=True, dtype="bfloat16")["dtype"] == "bfloat16"
    for key in ("model", "max_model_len", "enable_prefix_caching", "tensor_parallel_size"):
        assert cpu[key] == gpu[key]
    with pytest.raises(ConfigError, match="tensor_parallel_size=2 on CPU"):
        engine_kwargs(tiny, on_cpu=True, tensor_parallel_size=2)


def test_vllm_cpu_environment_keeps_what_the_user_set():
    assert cpu_environment({}, num_threads=2) == {
        "VLLM_CPU_KVCACHE_SPACE": str(CPU_KVCACHE_GIB),
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "OMP_NUM_THREADS": "2",
    }
    user = {"VLLM_CPU_KVCACHE_SPACE": "8", "OMP_NUM_THREADS": "1"}  # e.g. Ray sets the latter
    assert cpu_environment(user) == {"VLLM_CPU_OMP_THREADS_BIND": "nobind"}


def test_prompt_fits_only_with_room_for_one_token():
    assert fits_context(255, 256)
    assert not fits_context(256, 256)  # vLLM refuses a prompt of exactly max_model_len too
    assert not fits_context(300, 256)


def test_failure_counts_name_the_reason_and_stay_absent_without_failures():
    rows = [{"finish_reason": r} for r in ("stop", "prompt_too_long", "length", "prompt_too_long")]
    assert failure_counts(rows) == {"failed_prompt_too_long": 2}
    assert failure_counts(rows[:1]) == {}


# A submodule: tests/vllm would otherwise pass for an installed vllm (a namespace package).
@pytest.mark.skipif(
    importlib.util.find_spec("vllm.sampling_params") is not None, reason="vllm is installed"
)
def test_vllm_backend_without_vllm_names_the_extra():
    from tracefactory.generation.vllm_backend import VllmBackend

    with pytest.raises(ImportError, match=r"pip install 'tracefactory\[vllm\]'"):
        VllmBackend("some/model")

"""Build the engines the evaluate recipe runs its methods on: the policy's block sampler, the
value scorer and the grader.

The value model comes from a local folder or a Hub id (the released ``VGS-AI/DeepSeek-VM-1.5B``
layout loads as is), on any torch device and dtype: on a GPU it runs in bfloat16 beside the vLLM
engine, which takes ``policy.gpu_memory_utilization`` of the memory and leaves the rest to the
value model's weights, its bounded KV cache (``value_cache_tokens``) and activations
(``value_batch_tokens``). Token ids go from the policy to the value model unchanged, so their
tokenizers must be the same vocabulary; that is checked before anything runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tracefactory.errors import ConfigError
from tracefactory.search.config import EvaluateConfig


def delimiter_token_ids(tokenizer, delimiter: str) -> tuple[int, ...]:
    """Every non-special token whose text contains ``delimiter`` (BPE merges ``.\\n`` and
    ``\\n\\n`` into single tokens, so the delimiter's own id alone would miss line ends)."""
    special = set(tokenizer.all_special_ids)
    ids = []
    for token_id in range(len(tokenizer)):
        if token_id not in special and delimiter in tokenizer.decode([token_id]):
            ids.append(token_id)
    return tuple(ids)


def check_tokenizers(policy_model: str, policy_tokenizer, value_path: str) -> str:
    """Refuse a value model whose tokenizer differs from the policy's; return the hash.

    Raises:
        ConfigError: the value model folder has no tokenizer, or another vocabulary.
    """
    from tracefactory.models import load_tokenizer, require_same_tokenizer, tokenizer_hash

    expected = tokenizer_hash(policy_tokenizer)
    try:
        value_tokenizer = load_tokenizer(value_path)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"value model {value_path} has no loadable tokenizer ({e}); save it with its "
            f"tokenizer files so it can be checked against the policy's"
        ) from e
    require_same_tokenizer(
        f"the policy {policy_model!r}", expected, value_path, tokenizer_hash(value_tokenizer)
    )
    return expected


def policy_vocabulary(config: EvaluateConfig) -> str:
    """The hash of the policy's vocabulary, once the value model is found and checked to share it.

    Raises:
        ConfigError: the value model cannot be found or its tokenizer is not the policy's.
    """
    from tracefactory.models import load_tokenizer, local_folder

    value_path = str(local_folder(config.value_model, "evaluate.value_model"))
    return check_tokenizers(config.policy.model, load_tokenizer(config.policy.model), value_path)


@contextlib.contextmanager
def build_engines(config: EvaluateConfig) -> Iterator:
    """The policy's block sampler, the value scorer and a grader, closed on exit.

    Raises:
        ConfigError: the value model cannot be found or its tokenizer is not the policy's.
    """
    import torch

    from tracefactory.generation.engine import load_backend
    from tracefactory.generation.templates import encode_prompt
    from tracefactory.grading import Grader
    from tracefactory.models import load_tokenizer, local_folder, resolve_model
    from tracefactory.search.compute import model_shape
    from tracefactory.search.evaluate import Engines
    from tracefactory.search.sampling import EngineBlockSampler
    from tracefactory.search.scoring import FullValueScorer, IncrementalValueScorer
    from tracefactory.valuemodel.model import ValueModel

    torch.set_num_threads(config.num_threads)
    policy = config.policy
    tokenizer = load_tokenizer(policy.model)
    value_path = str(local_folder(config.value_model, "evaluate.value_model"))
    check_tokenizers(policy.model, tokenizer, value_path)
    value_model = ValueModel.from_pretrained(value_path, dtype=getattr(torch, config.value_dtype))
    value_model = value_model.to(config.value_device).eval()
    if config.scorer == "incremental":
        scorer = IncrementalValueScorer(
            value_model, config.value_batch_tokens, config.value_cache_tokens
        )
    else:
        scorer = FullValueScorer(value_model, max_batch_tokens=config.value_batch_tokens)
    backend = load_backend(policy, num_threads=config.num_threads)
    loaded = getattr(backend, "model", None)
    shape = model_shape(loaded if loaded is not None else resolve_model(policy.model))
    search = config.search
    delimiters = delimiter_token_ids(tokenizer, search.delimiter) if search.line_blocks else ()
    sampler = EngineBlockSampler(backend, tokenizer, config.sampling, delimiters)
    with Grader(config.grader) as grader:
        yield Engines(
            encode=lambda text: encode_prompt(tokenizer, policy.template, text),
            decode=lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True),
            sampler=sampler,
            scorer=scorer,
            grader=grader,
            policy_shape=shape,
        )

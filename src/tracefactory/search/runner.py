"""Build the real engines (policy, value model, grader) and run the whole evaluation.

``run_evaluation`` is what ``train/evaluate_search.py`` and ``tracefactory evaluate`` call: it
evaluates every configured benchmark and writes ``<output_dir>/metrics.json``, the plot data, the
PNGs, ``report.md`` and ``run.json`` (wall time per benchmark, scorer token counts).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from tracefactory.search.config import EvaluateConfig
from tracefactory.stats import write_metrics

logger = logging.getLogger(__name__)


def delimiter_token_ids(tokenizer, delimiter: str) -> tuple[int, ...]:
    """Every non-special token whose text contains ``delimiter`` (BPE merges ``.\\n`` and
    ``\\n\\n`` into single tokens, so the delimiter's own id alone would miss line ends)."""
    special = set(tokenizer.all_special_ids)
    ids = []
    for token_id in range(len(tokenizer)):
        if token_id not in special and delimiter in tokenizer.decode([token_id]):
            ids.append(token_id)
    return tuple(ids)


@contextlib.contextmanager
def build_engines(config: EvaluateConfig) -> Iterator:
    """The policy's block sampler, the value scorer and a grader, closed on exit."""
    import torch

    from tracefactory.generation.engine import load_backend
    from tracefactory.generation.templates import encode_prompt
    from tracefactory.grading import Grader
    from tracefactory.models import load_tokenizer, resolve_model
    from tracefactory.search.compute import model_shape
    from tracefactory.search.evaluate import Engines
    from tracefactory.search.sampling import EngineBlockSampler
    from tracefactory.search.scoring import FullValueScorer, IncrementalValueScorer
    from tracefactory.valuemodel.model import ValueModel

    torch.set_num_threads(config.num_threads)
    policy = config.policy
    backend = load_backend(policy, num_threads=config.num_threads)
    tokenizer = load_tokenizer(policy.model)
    loaded = getattr(backend, "model", None)
    shape = model_shape(loaded if loaded is not None else resolve_model(policy.model))
    search = config.search
    delimiters = delimiter_token_ids(tokenizer, search.delimiter) if search.line_blocks else ()
    sampler = EngineBlockSampler(backend, tokenizer, config.sampling, delimiters)
    value_model = ValueModel.from_pretrained(config.value_model_dir).to(policy.device).eval()
    scorer_class = IncrementalValueScorer if config.scorer == "incremental" else FullValueScorer
    scorer = scorer_class(value_model, max_batch_tokens=config.value_batch_tokens)
    with Grader(config.grader) as grader:
        yield Engines(
            encode=lambda text: encode_prompt(tokenizer, policy.template, text),
            decode=lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True),
            sampler=sampler,
            scorer=scorer,
            grader=grader,
            policy_shape=shape,
        )


def run_evaluation(config: EvaluateConfig, run_seed: int) -> dict:
    """Evaluate every benchmark; write metrics.json, plots and report.md; return the metrics."""
    from tracefactory.search.evaluate import load_benchmark, run_benchmark
    from tracefactory.search.report import write_reports

    output = Path(config.output_dir)
    metrics, timings = {}, {}
    with build_engines(config) as engines:
        for spec in config.benchmarks:
            problems = load_benchmark(spec, config)
            started = time.monotonic()
            logger.info("evaluate: benchmark %s, %d problems", spec.name, len(problems))
            metrics[spec.name] = run_benchmark(problems, config, engines, run_seed)
            timings[spec.name] = {
                "problems": len(problems),
                "wall_seconds": round(time.monotonic() - started, 1),
            }
        timings["value_scorer"] = {
            "kind": config.scorer,
            "tokens_processed": engines.scorer.tokens_processed,
        }
    write_metrics(output / "metrics.json", metrics)
    write_reports(metrics, output)
    (output / "run.json").write_text(json.dumps(timings, indent=2) + "\n")
    return metrics

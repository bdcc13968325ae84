"""The simulated engine: reasoning traces with R1-Distill's shape and no model.

It exists to measure what the pipeline itself costs at paper scale (the driver, the writer, the
grader on 16K-token responses, the label stage, the export) on a machine without GPUs, and to check
the planner's predictions against a run. Every stage downstream of it is the real one.

A trace is filler text (lower-case letters, spaces, commas, full stops and newlines, which can
never spell ``</think>`` or ``\\boxed``), then ``</think>``, then ``\\boxed{answer}`` and EOS. Per
problem (a hash of its text, so the same on every worker and run) it draws P(right) from a Beta
distribution and ``wrong_answers`` distinct wrong answers; per sample (its seed) it draws whether
the answer is right, which wrong answer otherwise, and the trace's length from a log-normal whose
median depends on correctness (wrong traces are longer, as R1-Distill's are). A length past the
request's cap is cut there with no answer: the share of traces at the cap follows from the cap.

A roll-out continues a roll-in cut at position p: its total length (prefix plus continuation) is
drawn from the same distribution conditioned on exceeding p, so roll-outs from late cuts are short.
The engine finds the problem of a request by its prompt: contexts start with the prompt of one
problem of ``simulation.problems_dir``, encoded with the policy's template.
"""

from __future__ import annotations

import hashlib
import math
from statistics import NormalDist

import numpy as np

from tracefactory.errors import ConfigError
from tracefactory.generation.config import SimulationConfig
from tracefactory.generation.engine import (
    FinishReason,
    GenerationBackend,
    GenerationRequest,
    GenerationResult,
    Sample,
    SamplingSpec,
)

FILLER = "abcdefghijklmnopqrstuvwxyz  ,.\n"  # never spells </think> or \boxed (no < / \ digits)
_NORMAL = NormalDist()


class LengthModel:
    """Trace lengths in tokens: log-normal with a median per correctness, cut at the cap."""

    def __init__(self, config: SimulationConfig) -> None:
        self.sigma = config.length_sigma
        self.log_medians = {
            True: math.log(config.median_tokens_right),
            False: math.log(config.median_tokens_wrong),
        }

    def cdf(self, tokens: float, right: bool) -> float:
        if tokens <= 0:
            return 0.0
        return _NORMAL.cdf((math.log(tokens) - self.log_medians[right]) / self.sigma)

    def quantile(self, q: float, right: bool) -> float:
        q = min(max(q, 1e-12), 1 - 1e-12)
        return math.exp(self.log_medians[right] + self.sigma * _NORMAL.inv_cdf(q))

    def draw_total(self, u: float, right: bool, longer_than: int) -> int:
        """A total length (uncapped) drawn with uniform ``u``, conditioned on > ``longer_than``."""
        low = self.cdf(longer_than, right)
        total = self.quantile(low + u * (1 - low), right)
        return max(longer_than + 1, math.ceil(total))


class ProblemProfile:
    """A problem's simulated behaviour: P(right), its gold and wrong answers."""

    def __init__(self, problem: str, answer: str, config: SimulationConfig) -> None:
        digest = hashlib.sha256(problem.encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
        self.p_right = float(rng.beta(config.accuracy_alpha, config.accuracy_beta))
        self.answer = answer
        self.wrong = _wrong_answers(answer, config.wrong_answers, rng)


def _wrong_answers(answer: str, count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct answers that differ from ``answer`` (integers near an integer gold)."""
    try:
        gold = int(answer.strip())
    except ValueError:
        return [f"{answer}+{k}" for k in range(1, count + 1)]
    offsets = rng.choice(np.arange(1, 4 * count + 1), size=count, replace=False)
    signs = rng.choice([-1, 1], size=count)
    return [str(gold + int(s) * int(o)) for s, o in zip(signs, offsets, strict=True)]


class SimulatedBackend(GenerationBackend):
    """Draws traces as described in the module doc, deterministic in each sample's seed.

    Args:
        tokenizer: the policy's tokenizer (the grader decodes with it).
        template: the policy's prompt template.
        problems: (problem, gold answer) pairs the requests' prompts come from.
        config: the length and accuracy parameters.

    Raises:
        ConfigError: if the tokenizer cannot spell the filler, ``</think>`` or the answers.
    """

    def __init__(
        self,
        tokenizer,
        template: str,
        problems: list[tuple[str, str]],
        config: SimulationConfig,
    ) -> None:
        from tracefactory.generation.templates import encode_prompt

        self.tokenizer, self.config = tokenizer, config
        self.lengths = LengthModel(config)
        self.filler_ids = np.array(self._ids(FILLER, exact=True), dtype=np.int64)
        self.think_end = self._ids("</think>")
        self.eos = tokenizer.eos_token_id
        self.profiles: dict[tuple[int, ...], ProblemProfile] = {}
        for problem, answer in problems:
            prompt = tuple(encode_prompt(tokenizer, template, problem))
            self.profiles[prompt] = ProblemProfile(problem, answer, config)
        self.prompt_lengths = sorted({len(prompt) for prompt in self.profiles})

    def _ids(self, text: str, exact: bool = False) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if exact and len(ids) != len(text):
            raise ConfigError(
                "policy.backend simulated needs a tokenizer with one token per filler character "
                f"(the shipped tracefactory:tiny has one); {len(text)} characters gave {len(ids)}"
            )
        return ids

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return [
            GenerationResult(request.request_id, self._samples(request)) for request in requests
        ]

    def _samples(self, request: GenerationRequest) -> list[Sample]:
        prompt_length, profile = self._problem_of(request)
        prefix = len(request.prompt_ids) - prompt_length  # roll-in tokens a roll-out continues
        return [self._sample(profile, prefix, seed, request.sampling) for seed in request.seeds]

    def _problem_of(self, request: GenerationRequest) -> tuple[int, ProblemProfile]:
        for length in self.prompt_lengths:
            profile = self.profiles.get(tuple(request.prompt_ids[:length]))
            if profile is not None:
                return length, profile
        raise ConfigError(
            f"simulated engine: request {request.request_id!r} starts with no prompt of the "
            f"problems in simulation.problems_dir={self.config.problems_dir!r}; point it at the "
            "problems table the roll-ins came from"
        )

    def _sample(
        self, profile: ProblemProfile, prefix: int, seed: int, sampling: SamplingSpec
    ) -> Sample:
        rng = np.random.default_rng(seed)
        u_right, u_answer, u_length = rng.random(3)
        right = bool(u_right < profile.p_right)
        answer = profile.answer if right else profile.wrong[int(u_answer * len(profile.wrong))]
        tail = [*self.think_end, *self._ids(f"\n\\boxed{{{answer}}}"), self.eos]
        generated = self.lengths.draw_total(float(u_length), right, prefix) - prefix
        generated = max(generated, len(tail))
        if generated > sampling.max_new_tokens:  # cut at the cap: no answer
            filler = rng.integers(0, len(self.filler_ids), size=sampling.max_new_tokens)
            return Sample(self.filler_ids[filler].tolist(), FinishReason.LENGTH)
        filler = rng.integers(0, len(self.filler_ids), size=generated - len(tail))
        return Sample([*self.filler_ids[filler].tolist(), *tail], FinishReason.STOP)


def load_simulated_backend(model: str, template: str, config: SimulationConfig | None):
    """The simulated engine of a policy: ``model``'s tokenizer, problems of the configured table.

    Raises:
        ConfigError: without a ``simulation`` section, or with an empty problems table.
    """
    import polars as pl

    from tracefactory.io import TableReader
    from tracefactory.models import load_tokenizer

    if config is None:
        raise ConfigError(
            "policy.backend simulated needs a `simulation:` section (see pipelines/scale-sim.yaml)"
        )
    problems = TableReader(config.problems_dir).scan().select("problem", "answer").collect()
    if problems.height == 0:
        raise ConfigError(f"simulation.problems_dir {config.problems_dir!r} has no problems")
    pairs = list(problems.select(pl.col("problem"), pl.col("answer")).iter_rows())
    return SimulatedBackend(load_tokenizer(model), template, pairs, config)

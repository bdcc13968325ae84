"""Every row of the shared real_outputs.jsonl where our verdict (label 1 or not)
disagrees with the source's own ``judged_correct``, with the reason. test_real_outputs.py fails if a
disagreement appears that is not listed here, or a listed one stops disagreeing.

Kinds of reasons:
- "source credited thinking": the only boxed answer is inside the thinking; the final section was
  cut by the length cap (4096-token DeepScaleR runs, one Sky-T1 run cut right after
  <|begin_of_solution|>). Rule: never reward unfinished thinking.
- "source credited an unboxed candidate": no boxed answer in the final section; the source harness
  took the last number or word. Rule: a finished response without a boxed answer is wrong.
- "source label wrong": the answer is equivalent to the gold answer (the 'review_note' rows).
- "grader limitation": equivalence is the wrong test for this question.
"""

_THINKING = (
    "source credited thinking: boxed answer only inside the thinking; final part cut at the cap"
)
_UNBOXED = "source credited an unboxed candidate: no \\boxed in the final section"

DISAGREEMENTS: dict[str, str] = {
    "deepscaler1.5b_4096tok_aime24_I_4": _THINKING,
    "deepscaler1.5b_4096tok_aime24_I_6": _THINKING,
    "deepscaler1.5b_4096tok_aime24_I_7": _THINKING,
    "deepscaler1.5b_4096tok_aime24_II_4": _THINKING,
    "skyt1math27b_math500_test/intermediate_algebra/1388.json": _THINKING
    + " (cut right after <|begin_of_solution|>)",
    "skyt1math27b_math500_test/algebra/2517.json": "source credited thinking: "
    "<|end_of_thought|> never written (response ends with '<'), so no_think_end",
    "skyt1math27b_math500_test/prealgebra/572.json": _UNBOXED + " ('0.15' from the prose)",
    "skyt1math27b_math500_test/intermediate_algebra/1422.json": _UNBOXED,
    "skyt1math27b_math500_test/intermediate_algebra/591.json": _UNBOXED
    + "; the response is cut mid-expression ('24 +'), the source took '24'",
    "skyt1math27b_math500_test/prealgebra/993.json": _UNBOXED,
    "skyt1math27b_math500_test/prealgebra/1747.json": _UNBOXED,
    "r1distillqwen14b_reasoningtasks_a582771d": _UNBOXED + " (word answer 'Hour' in prose)",
    "r1distillqwen14b_reasoningtasks_fc72f80a": _UNBOXED + " (word answer '**frog**' in prose)",
    "skyt1math27b_math500_test/precalculus/768.json": "source label wrong: the roots "
    "3+2\\sqrt{2}, 3-2\\sqrt{2} are the gold 3 \\pm 2\\sqrt{2}",
    "skyt1math27b_minerva_30": "source label wrong: only a 'v(r)=' prefix added",
    "skyt1math27b_minerva_171": "source label wrong: 1.87\\times10^{6} = 1.87e6",
    "skyt1math27b_minerva_96": "source label wrong: only an 'x(t)=' prefix added",
    "skyt1math27b_minerva_118": "source label wrong: only a 'Y(s)=' prefix added",
    "skyt1math27b_minerva_129": "source label wrong: 10\\times10^{-9} = 1e-8",
    "skyt1math27b_minerva_85": "source label wrong: with i the imaginary unit (the gold is "
    "complex), the answer equals the gold",
    "compassverifier_sample_1": "grader limitation: the question asks to factor completely; "
    "(6-2x)(6+2x) equals 4(3-x)(3+x) but is not fully factored, which equivalence cannot see",
}

# Rows where we agree with the source's "wrong" although the review note says the source is wrong:
# our grader misses these too (known false negatives, kept visible rather than hacked around).
KNOWN_FALSE_NEGATIVES: dict[str, str] = {
    "skyt1math27b_minerva_72": "gold string is malformed ('+$ $' artefact)",
    "skyt1math27b_minerva_131": "the same ODE multiplied by LC: equations equal up to a factor",
    "skyt1math27b_minerva_20": "6631.6 vs 6630: beyond float_rounding=6; a tolerance question",
}

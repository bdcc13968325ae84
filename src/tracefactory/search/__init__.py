"""Evaluation of the value model by search: value-guided block-wise beam search (VGS),
DVTS and a random-selection control, the independent-sampling baselines (pass@1, MV, BoN, WMV),
cheap value scoring, compute accounting, confidence intervals, and the report.

Algorithms run on two small interfaces (``interfaces.py``): a ``BlockSampler`` (the policy's engine,
``sampling.py``) and a ``ValueScorer`` (``scoring.py``). The evaluation is the recipe
``tracefactory.recipes.evaluate_search``: its stage (``stage.py``) runs the methods of
``evaluate.py`` on the engines of ``engines.py`` and keeps every sample in a table
(``samples.py``); the metrics are counted from that table.
"""

from tracefactory.search.beam import SearchSettings, Selection, beam_search, select_survivors
from tracefactory.search.independent import sample_independent
from tracefactory.search.interfaces import Block, BlockRequest, ScoreItem, Trace
from tracefactory.search.scoring import FullValueScorer, IncrementalValueScorer

__all__ = [
    "Block",
    "BlockRequest",
    "FullValueScorer",
    "IncrementalValueScorer",
    "ScoreItem",
    "SearchSettings",
    "Selection",
    "Trace",
    "beam_search",
    "sample_independent",
    "select_survivors",
]

"""The ``problems`` stage: load problem sources, clean, dedupe, decontaminate and split them.

Modules: ``config`` (the params section), ``sources`` (rows from `datasets` or the toy world),
``clean`` (the paper's cleaning rules), ``dedupe``, ``decontaminate`` (n-gram overlap with
benchmarks), ``select`` (all rules in order, and splits) and ``stage`` (``ProblemsStage``).
Nothing is imported here, so ``tracefactory.config`` can import ``problems.config`` without a cycle.
"""

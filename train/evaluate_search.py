"""Evaluate value-guided search: the recipe ``tracefactory.recipes.evaluate_search``, as a script.

python train/evaluate_search.py --params params.yaml [--set evaluate.search_seeds=4 ...]
"""

from tracefactory.recipes import run_script
from tracefactory.recipes.evaluate_search import main

if __name__ == "__main__":
    run_script(main)

"""Train the value model: the recipe ``tracefactory.recipes.train_value_model``, as a script.

python train/train_value_model.py --params params.yaml [--set train.max_steps=50 ...]
torchrun --nproc_per_node=4 train/train_value_model.py --params params.yaml  # DDP on 4 GPUs
"""

from tracefactory.recipes import run_script
from tracefactory.recipes.train_value_model import main

if __name__ == "__main__":
    run_script(main)

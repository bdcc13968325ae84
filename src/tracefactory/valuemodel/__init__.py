"""The value model of VGS (arXiv 2505.17373) and what its trainer shares: data, metrics, config.

Training recipe: ``train/train_value_model.py``. Search uses ``ValueModel.values`` and
``ValueModel.forward_with_cache``.
"""

from tracefactory.valuemodel.config import TrainConfig, ValueTarget

__all__ = ["CLASS_NAMES", "SUCCESS_CLASS", "TrainConfig", "ValueModel", "ValueTarget"]
_MODEL_NAMES = {"CLASS_NAMES", "SUCCESS_CLASS", "ValueModel"}


def __getattr__(name: str):
    # torch and transformers load when the model is first used, not whenever params.yaml is
    # validated (tracefactory.config imports TrainConfig from here).
    if name in _MODEL_NAMES:
        from tracefactory.valuemodel import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The value model of VGS (arXiv 2505.17373) and what its trainer shares: data, metrics, config.

Training recipe: ``tracefactory.recipes.train_value_model``. Search uses
``model.ValueModel.values`` and ``model.ValueModel.forward_with_cache``. Nothing is imported here,
so validating params (which reads ``config``) never loads torch.
"""

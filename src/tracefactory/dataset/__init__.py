"""The published dataset: export to a `datasets`-loadable folder, its card and figures, Hub push."""

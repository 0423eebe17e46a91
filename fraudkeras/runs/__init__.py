"""Run folders: the layout, the training configuration, ``RunFolder`` and
checkpoints."""

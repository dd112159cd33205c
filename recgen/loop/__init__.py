"""The loop between recognition and generation: judging samples, feeding them back (augmentation)."""

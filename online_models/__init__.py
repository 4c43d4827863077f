"""Nudge's online learning: features, River pipelines, delayed labels, RFM scoring; no I/O."""

"""Nudge's deciding core: pure functions of state, event and time; no I/O."""

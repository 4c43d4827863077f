"""Nudge's streaming shell: the Faust app, agents and commands around streams.core."""

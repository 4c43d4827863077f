"""Coverage-guided fuzzing of Nudge's pure core with atheris (libFuzzer for Python).

``make fuzz`` runs the long campaign; ``tests/unit/test_fuzz_smoke.py`` runs a
short one in the test command.
"""

"""Layer 3 — course authoring: release stubs from solutions, validate, execute
solution notebooks, run public tests, planted bugs (mutants). Imports
``grading`` and ``sandbox``; never ``batch`` or ``cli``.
"""

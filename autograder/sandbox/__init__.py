"""Layer 1 — isolation: where learner code runs and what it may touch.

``isolation`` builds the sandbox command lines (bubblewrap, setpriv, plain) and
resource limits; ``spawn`` starts learner processes, cold or forked from a warm
zygote; ``child`` is the learner-side program and ``codec`` the plain-data wire
format. ``child`` and ``codec`` run *inside* the sandbox: they import nothing
from the rest of ``autograder`` (tests/test_layers.py enforces it).
"""

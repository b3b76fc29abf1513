"""Layer 3 — many submissions: discovery of submission layouts, the resumable
state, worker pools (local processes or Dask), gradebooks and plots. Imports
``grading`` and ``sandbox``; never ``course`` or ``cli``.
"""

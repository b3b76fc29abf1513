"""Layer 2 — grading one submission in the trusted process.

``catalogue`` (assignment.toml → Assignment) → ``notebook`` (read, repair,
extract graded cells) → ``learner`` (the proxy to the sandboxed learner
process) → ``plugin`` + ``checks`` (the hidden pytest suite's fixtures and
comparison helpers) → ``grade`` (run the suite, score) → ``results``/``reports``
(the one results object and its renderings). Imports: ``autograder.sandbox`` and
this package only.
"""

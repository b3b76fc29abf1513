"""dlgrade: grade deep-learning course notebooks function by function, in a sandbox."""

import sys

__version__ = "0.1.0"

# jsonschema (used by nbformat to validate notebooks) imports rfc3987_syntax when
# it is installed (jupyter-events pulls it in) and that module builds a Lark
# grammar at import: 4-8 s on every `dlgrade` start. Notebook validation never
# checks the "iri" formats it provides, so the grader runs without it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: "not importable"

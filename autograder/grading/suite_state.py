"""A hidden suite's module-level state, put back as it was collected before each submission.

A warm worker collects a suite once (grading/suite_session.py) and runs its tests for every
submission it grades, so whatever a test leaves in its module (a list it appends to, a dict
it caches results in, a class attribute, a mutable default argument, an ``lru_cache``) would
reach the next learner's grade. ``ModuleState.capture`` copies each suite module's state right
after collection, and ``restore`` puts a fresh copy of it back before each submission:

- module globals: names added since are removed, removed ones come back, and each value that
  is data (not a module, function, class or other code object) is a fresh ``copy.deepcopy``
  of the collected one;
- classes defined in the module: their data attributes, the same way;
- functions defined in the module: their default arguments (``__defaults__``,
  ``__kwdefaults__``), and ``cache_clear()`` for ``functools.lru_cache``/``cache`` wrappers.

Not covered: state kept in a closure's cells, in another
module the suite imports (the reference is trusted and computed the same for everyone), or
outside Python (files, environment). A value that cannot be deep-copied (a lock, an open
file, a generator) is refused when the suite is collected: ``UnresettableState`` names it, and
the suite must build it in a fixture instead.
"""

from __future__ import annotations

import copy
import types
from dataclasses import dataclass, field

# Values that are code, not state: kept by reference (their own data is handled below).
_CODE = (
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    type,
    staticmethod,
    classmethod,
    property,
)
# Immutable scalars: nothing to copy.
_ATOMIC = (type(None), bool, int, float, complex, str, bytes, range, type(Ellipsis), type(NotImplemented))
_NO_COPY = object()  # marks a kept-by-reference value in a snapshot


class UnresettableState(Exception):
    """A suite module holds a value that cannot be copied, so it could not be reset between learners."""


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _is_data(value) -> bool:
    return not isinstance(value, _CODE + _ATOMIC) and not _is_cached_function(value)


def _is_cached_function(value) -> bool:
    return callable(value) and callable(getattr(value, "cache_clear", None)) and hasattr(value, "__wrapped__")


def _copy(value, where: str):
    try:
        return copy.deepcopy(value)
    except Exception as exc:
        raise UnresettableState(
            f"{where} ({type(value).__name__}) cannot be copied ({type(exc).__name__}: {exc}), so it could "
            "not be reset between learners; build it in a fixture instead"
        ) from None


@dataclass
class _Snapshot:
    """One namespace's values: by reference (code, atomics) or as a pristine deep copy (data)."""

    values: dict = field(default_factory=dict)
    pristine: dict = field(default_factory=dict)

    @classmethod
    def of(cls, namespace: dict, where: str, skip: frozenset = frozenset()) -> _Snapshot:
        snap = cls()
        for name, value in namespace.items():
            if name in skip:
                continue
            if _is_data(value) and not _dunder(name):  # __builtins__, __spec__...: the interpreter's
                snap.pristine[name] = _copy(value, f"{where}.{name}")
                snap.values[name] = _NO_COPY
            else:
                snap.values[name] = value
        return snap

    def value(self, name: str):
        kept = self.values[name]
        return copy.deepcopy(self.pristine[name]) if kept is _NO_COPY else kept


@dataclass
class ModuleState:
    module: types.ModuleType
    globals_: _Snapshot
    classes: dict  # class -> _Snapshot of its data attributes
    defaults: dict  # function -> (__defaults__, __kwdefaults__) pristine copies
    cached: list  # lru_cache wrappers

    @classmethod
    def capture(cls, module: types.ModuleType) -> ModuleState:
        name = module.__name__
        namespace = vars(module)
        classes, defaults, cached = {}, {}, []
        for attr, value in list(namespace.items()):
            if isinstance(value, type) and value.__module__ == name:
                members = {k: v for k, v in vars(value).items() if not _dunder(k)}
                classes[value] = _Snapshot.of(members, f"{name}.{attr}")
                for member in members.values():  # methods' mutable defaults
                    function = getattr(member, "__func__", member)
                    if isinstance(function, types.FunctionType):
                        defaults[function] = _defaults(function, f"{name}.{attr}.{function.__name__}")
            elif isinstance(value, types.FunctionType) and value.__module__ == name:
                defaults[value] = _defaults(value, f"{name}.{attr}")
            elif _is_cached_function(value):
                cached.append(value)
        return cls(module, _Snapshot.of(namespace, name), classes, defaults, cached)

    def restore(self) -> None:
        namespace = vars(self.module)
        for name in [n for n in namespace if n not in self.globals_.values]:
            del namespace[name]
        for name in self.globals_.values:
            namespace[name] = self.globals_.value(name)
        for klass, snap in self.classes.items():
            for name in [n for n in vars(klass) if not _dunder(n) and n not in snap.values]:
                delattr(klass, name)
            for name in snap.values:
                setattr(klass, name, snap.value(name))
        for function, (positional, keywords) in self.defaults.items():
            function.__defaults__ = copy.deepcopy(positional)
            function.__kwdefaults__ = copy.deepcopy(keywords)
        for wrapper in self.cached:
            wrapper.cache_clear()


def _defaults(function: types.FunctionType, where: str) -> tuple:
    return (
        _copy(function.__defaults__, f"{where}'s default arguments"),
        _copy(function.__kwdefaults__, f"{where}'s keyword-only defaults"),
    )

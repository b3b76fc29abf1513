"""The grader's run-time settings: one typed object, built at a process's edge.

The environment and the command line are read in one place per process, its
edge: ``cli.main`` (flags and environment), a batch worker's initializer (the
settings of the batch that started it), a Dask task (the same, carried with
the task), a test session (tests/conftest.py). Each builds a :class:`Settings`
and installs it with :func:`use`; every module below reads :func:`current`
and never ``os.environ``. Settings are plain, frozen and picklable, so they
travel to worker processes with the work.

The environment variables (for deployments, Docker images and tests):

``DLGRADE_SANDBOX``                    bwrap | setpriv | plain: the strategy, instead of the strongest available
``DLGRADE_NO_NAMESPACES``              set: the zygote's uid mode even where namespaces work
                                       (what Docker's default seccomp profile allows)
``DLGRADE_NAMESPACE_KEEPER``           set: each submission's namespaces through a keeper process even
                                       where the zygote could make them itself (the way a seccomp
                                       profile that refuses ``setns`` leaves; tests both ways)
``DLGRADE_NO_CGROUPS``                 set: no cgroups even where they are writable
``DLGRADE_CHILD_CUDA_VISIBLE_DEVICES`` the GPUs the learner may see (default none); non-empty (and not
                                       ``-1``): the sandbox passes the NVIDIA device nodes through
``DLGRADE_GPU_DEVICES``                the device nodes passed through then (a glob, default
                                       ``/dev/nvidia*``: nvidiactl, nvidia-uvm, nvidia0, ..., nvidia-caps/);
                                       tests point it at fake nodes
``DLGRADE_ROOT``                       the course folder (solutions/, assignments/); default: the checkout
``DLGRADE_DEBUG``                      set: print the traceback of a grader failure
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

STRATEGIES = ("bwrap", "setpriv", "plain")
GPU_DEVICES = "/dev/nvidia*"  # what the NVIDIA Container Toolkit (or the host's driver) creates


class SettingsError(ValueError):
    """A setting with a value the grader does not know; ``str()`` names it."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    strategy: str | None = None  # None: the strongest this machine offers (isolation.available_strategy)
    namespaces: bool = True  # False: the zygote's uid mode even where namespaces work
    namespace_keeper: bool = False  # True: namespaces through a keeper even where setns works (prepared.py)
    cgroups: bool = True  # False: no cgroups even where they are writable
    child_cuda_devices: str = ""  # CUDA_VISIBLE_DEVICES inside the sandbox; non-empty: GPUs on (gpus_requested)
    gpu_devices: str = GPU_DEVICES  # the device nodes passed through when GPUs are on (a glob)
    root: Path | None = None  # the course folder; None: the checkout this package is in
    # --accept-unisolated: grade under setpriv even where the learner's uid can read the suites or
    # solutions (each grading process checks, isolation.readable_check; every report quotes the outcome)
    accept_unisolated: bool = False
    debug: bool = False

    def __post_init__(self) -> None:
        if self.strategy is not None and self.strategy not in STRATEGIES:
            raise SettingsError(f"unknown sandbox strategy {self.strategy!r}; one of {', '.join(STRATEGIES)}")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """The settings an edge reads from its environment (see the module docstring)."""
        root = environ.get("DLGRADE_ROOT")
        return cls(
            strategy=environ.get("DLGRADE_SANDBOX") or None,
            namespaces=not environ.get("DLGRADE_NO_NAMESPACES"),
            namespace_keeper=bool(environ.get("DLGRADE_NAMESPACE_KEEPER")),
            cgroups=not environ.get("DLGRADE_NO_CGROUPS"),
            child_cuda_devices=environ.get("DLGRADE_CHILD_CUDA_VISIBLE_DEVICES", ""),
            gpu_devices=environ.get("DLGRADE_GPU_DEVICES") or GPU_DEVICES,
            root=Path(root).resolve() if root else None,
            debug=bool(environ.get("DLGRADE_DEBUG")),
        )

    @property
    def gpus_requested(self) -> bool:
        """Whether the learner may use a GPU: CUDA_VISIBLE_DEVICES names one (not empty, not -1)."""
        return self.child_cuda_devices.strip() not in ("", "-1")

    def but(self, **changes) -> Settings:
        """A copy with ``changes``."""
        return replace(self, **changes)


_current = Settings()


def current() -> Settings:
    """The settings this process's edge installed (defaults when none did)."""
    return _current


def use(settings: Settings) -> Settings:
    """Install ``settings`` for this process; returns the previous ones (to restore them)."""
    global _current
    previous, _current = _current, settings
    return previous

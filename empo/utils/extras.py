"""Optional dependencies, installed as extras of the ``empo`` package.

The solvers and worlds need only the core requirements. Some features need more:

=============  ================================================  ==================
extra          packages                                          needed for
=============  ================================================  ==================
``plots``      matplotlib                                        run pictures
``wandb``      wandb                                             W&B logging
``tensorboard`` tensorboard                                      TensorBoard logging
``ray``        ray                                               the Ray sweep backend
``all``        all of the above                                  everything
=============  ================================================  ==================

:func:`require` imports such a package or raises :class:`MissingExtraError`, whose
message names the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRAS: dict[str, tuple[str, ...]] = {
    "plots": ("matplotlib",),
    "wandb": ("wandb",),
    "tensorboard": ("tensorboard",),
    "ray": ("ray",),
}
"""Extra name to the modules it provides (``setup.py`` lists their versions)."""


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the extra."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional module, or fail with a message naming its extra.

    Parameters
    ----------
    module
        The module to import (e.g. ``"ray"``).
    extra
        The extra of ``empo`` that installs it (a key of :data:`EXTRAS`).
    purpose
        What needs it, for the message (e.g. ``"the ray sweep backend"``).

    Raises
    ------
    MissingExtraError
        ``"<purpose> needs <module>, which is not installed: pip install
        'empo[<extra>]'"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{purpose} needs {module}, which is not installed: "
            f"pip install 'empo[{extra}]'"
        ) from None

"""empo: policies that softly maximise aggregate human power.

Public API: :class:`Parameters`, :func:`run_experiment` and the public enums.
"""

__version__ = "0.1.0"

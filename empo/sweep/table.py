"""The results table of a sweep: one row per run, safe against interruption.

A sweep directory holds two views of the same table:

``results.jsonl``
    The source of truth. One JSON object per finished run, appended with a single
    ``write`` and flushed to disk before the next run is recorded, so an interruption
    can at worst leave one truncated last line, which :func:`read_rows` ignores. A run
    that is recorded twice (a failed run retried on resume) keeps its latest row.
``results.csv``
    The same rows flattened for spreadsheets and pandas, rewritten after every row
    through a temporary file and :func:`os.replace`, so it is always a complete
    table (after an interruption at worst one row behind ``results.jsonl``; it is
    rewritten from it when the sweep runs again).

A row is ``{"run", "overrides", "status", "error", "duration_s", "run_dir",
"metrics"}``. In the CSV the overridden parameters become columns named by their
dotted path and the metrics columns named by their key; a metric whose key collides
with another column is written as ``metric:<key>``.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

logger = logging.getLogger(__name__)

JSONL_NAME = "results.jsonl"
CSV_NAME = "results.csv"
FIXED_COLUMNS = ("run", "status", "error", "duration_s", "run_dir")
COMPLETED = "completed"
FAILED = "failed"
DEFAULT_SUMMARY_METRICS = ("!*/trajectory/*", "!*/expected/*", "!time/*")


def read_rows(sweep_dir: Path | str) -> dict[str, dict[str, Any]]:
    """Read the latest row of every run recorded in a sweep directory.

    Parameters
    ----------
    sweep_dir
        The sweep directory (holding ``results.jsonl``).

    Returns
    -------
    dict
        Run name to row, in the order the runs were first recorded. Empty when the
        directory holds no table yet. A truncated last line (an interrupted write) is
        skipped with a warning; a malformed line elsewhere raises.

    Raises
    ------
    ValueError
        If a line other than the last one is not a JSON object with a ``run`` key.
    """
    path = Path(sweep_dir) / JSONL_NAME
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    rows: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "run" not in row:
                raise ValueError("not a row object")
        except ValueError as error:
            if number == len(lines):
                logger.warning("%s:%d: ignoring truncated last line", path, number)
                continue
            raise ValueError(f"{path}:{number}: malformed row: {error}") from error
        rows[row["run"]] = row
    return rows


def append_row(sweep_dir: Path | str, row: dict[str, Any]) -> None:
    """Append one row to ``results.jsonl`` and flush it to disk.

    A truncated last line left by an interrupted write is cut off first, so the
    file holds only complete rows.

    Parameters
    ----------
    sweep_dir
        The sweep directory.
    row
        A row object with at least a ``run`` key.
    """
    path = Path(sweep_dir) / JSONL_NAME
    line = json.dumps(row, sort_keys=True) + "\n"
    with path.open("ab+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size:
            handle.seek(0)
            content = handle.read()
            if not content.endswith(b"\n"):
                handle.truncate(content.rfind(b"\n") + 1)
                logger.warning("%s: cut off a truncated last line", path)
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def ordered_rows(
    rows: dict[str, dict[str, Any]], order: Iterable[str]
) -> list[dict[str, Any]]:
    """Rows in the sweep's run order, then rows of runs no longer in the sweep.

    Parameters
    ----------
    rows
        Run name to row, as :func:`read_rows` returns.
    order
        Run names in sweep order.
    """
    order = list(order)
    known = set(order)
    first = [rows[name] for name in order if name in rows]
    return first + [row for name, row in rows.items() if name not in known]


def table_columns(rows: list[dict[str, Any]]) -> tuple[list[str], set[str]]:
    """CSV column names for a list of rows (see the module docstring).

    Parameters
    ----------
    rows
        Rows in table order.

    Returns
    -------
    columns
        ``run``, the overridden parameters, the other fixed columns, the metrics.
    taken
        The fixed and parameter column names, which metric columns must avoid.
    """
    params: list[str] = []
    metrics: list[str] = []
    for row in rows:
        params += [key for key in row.get("overrides", {}) if key not in params]
        metrics += [key for key in row.get("metrics", {}) if key not in metrics]
    taken = set(FIXED_COLUMNS) | set(params)
    columns = ["run", *params, *FIXED_COLUMNS[1:]]
    return columns + [metric_column(key, taken) for key in metrics], taken


def metric_column(key: str, taken: set[str]) -> str:
    """CSV column of a metric: its key, or ``metric:<key>`` if that is taken."""
    return f"metric:{key}" if key in taken else key


def flatten_row(row: dict[str, Any], taken: set[str]) -> dict[str, Any]:
    """One row as a flat ``column -> value`` dict (nested values as JSON).

    Parameters
    ----------
    row
        A row object.
    taken
        Parameter and fixed column names, for :func:`metric_column`.
    """
    flat: dict[str, Any] = {name: row.get(name) for name in FIXED_COLUMNS}
    flat.update(row.get("overrides", {}))
    flat.update({metric_column(k, taken): v for k, v in row.get("metrics", {}).items()})
    return {
        key: json.dumps(value) if isinstance(value, (dict, list)) else value
        for key, value in flat.items()
    }


def write_csv(sweep_dir: Path | str, rows: list[dict[str, Any]]) -> Path:
    """Rewrite ``results.csv`` atomically (temporary file, then rename).

    Parameters
    ----------
    sweep_dir
        The sweep directory.
    rows
        Rows in table order.

    Returns
    -------
    Path
        The CSV file.
    """
    columns, taken = table_columns(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(flatten_row(row, taken))
    path = Path(sweep_dir) / CSV_NAME
    temporary = path.with_name(f".{CSV_NAME}.tmp")
    with temporary.open("w", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def format_table(
    rows: list[dict[str, Any]],
    metrics: Sequence[str] = DEFAULT_SUMMARY_METRICS,
    max_width: int = 24,
) -> str:
    """A fixed-width text rendering of the table, for ``empo sweep --summary``.

    Parameters
    ----------
    rows
        Rows in table order.
    metrics
        Glob patterns (:mod:`fnmatch`) of the metric keys to show; a pattern
        starting with ``!`` hides the keys it matches. By default per-time-step
        series (``*/trajectory/*``, ``*/expected/*``) and timings are hidden.
    max_width
        Cells other than the run name longer than this are shortened with "…".
    """
    shown = [
        key
        for key in dict.fromkeys(k for row in rows for k in row.get("metrics", {}))
        if _selected(key, metrics)
    ]
    rows = [
        {**row, "metrics": {k: row["metrics"][k] for k in shown if k in row["metrics"]}}
        for row in ({"metrics": {}, **row} for row in rows)
    ]
    columns, taken = table_columns(rows)
    columns = [name for name in columns if name != "run_dir"]
    widths = [10**6] + [max_width] * (len(columns) - 1)
    cells = [[_cell(name, w) for name, w in zip(columns, widths)]]
    for row in rows:
        flat = flatten_row(row, taken)
        cells.append([_cell(flat.get(name), w) for name, w in zip(columns, widths)])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def _selected(key: str, patterns: Sequence[str]) -> bool:
    """Whether the last pattern matching ``key`` shows it (``!pattern`` hides)."""
    show = not any(not p.startswith("!") for p in patterns)
    for pattern in patterns:
        hide = pattern.startswith("!")
        if fnmatch.fnmatchcase(key, pattern.lstrip("!")):
            show = not hide
    return show


def _cell(value: Any, max_width: int) -> str:
    """Text of one table cell."""
    if value is None:
        text = ""
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value).replace("\n", " ")
    return text if len(text) <= max_width else text[: max_width - 1] + "…"

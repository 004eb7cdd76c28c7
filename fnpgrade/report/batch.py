"""Reports for a folder (or list) of videos: one page per video, a CSV summary, bad videos named, not fatal."""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["make_reports", "report_name"]


def report_name(video, taken=()):
    """A file stem for a video's report: its name, made unique among ``taken``."""
    stem = Path(str(video)).name.replace(".", "_") or "video"
    name, k = stem, 2
    while name in taken:
        name, k = f"{stem}_{k}", k + 1
    return name


def make_reports(pipe, videos, out_dir, *, json=True, summary="summary.csv", progress=True, **options):
    """Write a report per video into ``out_dir`` and a CSV summary; continue past videos that cannot be reported.

    Parameters
    ----------
    pipe : Pipeline
        A fitted grader (see :func:`~fnpgrade.report.make_report`).
    videos : list of str
        Video files or frame folders.
    out_dir : str or path-like
        Written: ``<video>.html`` (and ``<video>.json`` with ``json=True``)
        per video, and ``summary``.
    json : bool, default=True
    summary : str, default="summary.csv"
        One line per video: the grade, probabilities, affected side, region
        percents and levels, face coverage; videos not reported get status
        ``not reported`` and the reason.
    progress : bool, default=True
        A progress bar over videos (tqdm, on stderr) when stderr is a terminal.
    **options
        Passed to :func:`~fnpgrade.report.make_report` (``mirrored``,
        ``fps``, ``window``, ``card``, ``model_name``, ...).

    Returns
    -------
    reports : dict
        ``video -> Report`` for the videos reported.
    failures : list of (video, reason)
        The videos that could not be reported, and why.
    """
    from ..utils import progress_bar
    from .core import make_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reports, failures, rows, taken = {}, [], [], set()
    # on a terminal only (redirected to a file, no bar), never with progress=False
    bar = progress_bar(iterable=list(videos), desc="reports", unit="video", disable=None if progress else True)
    for video in bar:
        bar.set_postfix_str(Path(str(video)).name[-30:])
        try:
            report = make_report(pipe, video, **options)
        except (ValueError, FileNotFoundError, OSError) as exc:  # FaceCoverageError is a ValueError
            text = str(exc)
            failures.append((str(video), text[len(str(video)) + 2:] if text.startswith(f"{video}: ") else text))
            continue
        name = report_name(video, taken)
        taken.add(name)
        report.to_html(out / f"{name}.html")
        if json:
            report.to_json(out / f"{name}.json")
        row = report.summary_row()
        row["report"] = f"{name}.html"
        rows.append(row)
        reports[str(video)] = report
    bar.close()
    _write_summary(out / summary, rows, failures)
    return reports, failures


def _write_summary(path, rows, failures):
    columns = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    if not columns:
        columns = ["video", "status", "report", "warnings"]
    for extra in ("report", "warnings"):
        if extra not in columns:
            columns.append(extra)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
        for video, reason in failures:
            writer.writerow({"video": video, "status": "not reported", "warnings": reason})
    return path

"""What a clinician takes away from a video: affected side, region sub-grades, a grade over time, a report page.

:func:`make_report` runs one video through a fitted grader (the clinical
measures grader, which grades the whole video as ``predict`` does, or the
paper's network, which grades windows) and returns a
:class:`Report`, whose ``to_html()`` is one self-contained page and whose
``to_json()`` holds the same numbers; :func:`make_reports` does a folder of
videos, with one page per video and a CSV summary.

Modules, one job each (the measurement itself is
:func:`fnpgrade.measures.measure_video`): :mod:`~fnpgrade.report.side` (affected side, side convention),
:mod:`~fnpgrade.report.regions` (region sub-grades),
:mod:`~fnpgrade.report.timeline` (windows, gaps, grade and uncertainty),
:mod:`~fnpgrade.report.explain` (explanations),
:mod:`~fnpgrade.report.figures` (pictures), :mod:`~fnpgrade.report.html`
(the page), :mod:`~fnpgrade.report.core` (:func:`make_report`),
:mod:`~fnpgrade.report.batch` (:func:`make_reports`), :mod:`~fnpgrade.report.measure`
(:func:`measure`: a video's side, regions and measures with no model).
"""

from .batch import make_reports
from .core import DISCLAIMER, Report, make_report
from .measure import measure, measure_row
from .side import patient_side

__all__ = ["make_report", "make_reports", "measure", "measure_row", "Report", "DISCLAIMER", "patient_side"]

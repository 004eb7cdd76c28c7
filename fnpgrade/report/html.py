"""One self-contained HTML page from a report's numbers and pictures (inline CSS and PNGs, no script, no network).

Every number that matters carries ``data-key="<path in the JSON>"``, so a test
(or a study's scraper) can check the page against the JSON.
"""

from __future__ import annotations

import base64
import html
import json

__all__ = ["render_html", "headline"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Arial,sans-serif;margin:0 auto;max-width:1000px;padding:16px 24px;
color:#1b1b1b;line-height:1.4}
h1{font-size:1.5em;margin:0.2em 0}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em;padding-bottom:2px}
.disclaimer{background:#fff3cd;border:1px solid #e0b400;padding:8px 12px;border-radius:4px;font-weight:600}
.summary{background:#f3f6fa;border:1px solid #c9d3df;border-radius:4px;padding:10px 14px}
.headline{font-size:1.1em}.big{font-size:1.35em;font-weight:700}
table{border-collapse:collapse;margin:6px 0;font-size:0.92em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:10px 0}figure img{max-width:100%;height:auto;border:1px solid #ddd}figcaption{font-size:0.88em;color:#444}
.warn{color:#8a4b00}.small{font-size:0.85em;color:#555}
"""


def _e(value):
    return html.escape(str(value))


def _v(key, value, fmt="{}"):
    """A number (or word) tagged with the JSON path it comes from."""
    text = "n/a" if value is None else fmt.format(value)
    return f'<span data-key="{_e(key)}">{_e(text)}</span>'


def _pct(value):
    return "n/a" if value is None else f"{value:.0f}%"


def headline(data):
    """The page's first sentences: which side, how much, where, when, how sure (plain text)."""
    side, grade = data["affected_side"], data["grade"]
    regions = [r for r in data["regions"] if r["percent"] is not None]
    weakest = min(regions, key=lambda r: r["percent"]) if regions else None
    worst = data["worst_windows"][0] if data["worst_windows"] else None
    parts = []
    if side["side"] != "none":
        parts.append(f"The patient's {side['side']} side is weaker: it moves {side['movement_percent']:.0f}% as far as "
                     f"the other side (confidence {side['confidence']:.2f})"
                     + (", a difference within the range measured on healthy faces, named because the grade says a "
                        "palsy." if side.get("within_healthy_range") else "."))
    else:
        parts.append("No side is clearly weaker (within the range measured on healthy faces).")
    if weakest is not None:
        parts.append(f"Weakest region: {weakest['name']} ({weakest['percent']:.0f}% of the other side).")
    if worst is not None:
        parts.append(f"Worst stretch: {worst['start_s']:.1f}-{worst['end_s']:.1f} s.")
    if grade is None:
        return " ".join(parts + ["No grade: no model was given; these are the measures alone."])
    p = grade["probabilities"][grade["label"]]
    low, high = grade["interval"][grade["label"]]
    parts.append(f"Grade {grade['meaning']}: probability {p:.2f} (90% interval {low:.2f}-{high:.2f}).")
    return " ".join(parts)


def _figure(images, name):
    if name not in images:
        return ""
    caption, png = images[name]
    encoded = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{_e(caption)}" data-image="{_e(name)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _grade_section(data):
    grade = data["grade"]
    if grade is None:
        return ("<h2>Grade</h2><p data-key=grade>No grade: the page was made without a model, from the measures "
                "alone (fnpgrade measure / report without --model). A grade needs a model trained on graded videos "
                "('fnpgrade train'); the side and the regions above need none.</p>")
    rows = "".join(
        f"<tr><td>{_e(c)}</td><td class=num>{_v(f'grade.probabilities.{c}', p, '{:.3f}')}</td>"
        f"<td class=num>{_v(f'grade.interval.{c}.0', grade['interval'][c][0], '{:.3f}')} - "
        f"{_v(f'grade.interval.{c}.1', grade['interval'][c][1], '{:.3f}')}</td></tr>"
        for c, p in grade["probabilities"].items())
    return (f"<h2>Grade</h2><p class=big>{_v('grade.label', grade['label'])} "
            f"<span class=small>({_e(grade['meaning'])})</span></p>"
            f"<table><tr><th>level</th><th>probability</th><th>90% interval</th></tr>{rows}</table>"
            f"<p>Stability: {_v('grade.stability', grade['stability'], '{:.2f}')} of resamples give this grade; "
            f"{_v('grade.agreement', grade['agreement'], '{:.2f}')} of the stretches do on their own. Stability is "
            "how steady the model's answer is on this video, not how likely it is to be right.</p>"
            + _held_out(data) + f"<p class=small>How: {_e(grade['method'])}.</p>")


def _held_out(data):
    """The model's accuracy on people it was not trained on, from its model card (what the grade is worth)."""
    validation = ((data.get("model") or {}).get("card") or {}).get("validation")
    if not validation:
        return ("<p data-key=held_out>How often this model is right on people it was not trained on: not measured "
                "(its model card holds no held-out score).</p>")
    parts = [f"{label} {_v(f'model.card.validation.{key}', validation[key], '{:.2f}')}"
             for key, label in (("clip_accuracy", "per video"), ("person_accuracy", "per person and grade"))
             if validation.get(key) is not None]
    if validation.get("brier") is not None:  # calibration: how far the probabilities are from what happened
        parts.append(f"Brier score {_v('model.card.validation.brier', validation['brier'], '{:.2f}')} (0 perfect; "
                     f"a uniform answer {validation.get('uniform_brier', 0):.2f})")
    return (f"<p data-key=held_out>How often this model is right on people it was not trained on: "
            f"{', '.join(parts)} ({_e(validation.get('method', ''))}, {validation.get('n_people')} people).</p>")


def _side_section(data):
    side = data["affected_side"]
    return (f"<h2>Affected side</h2><p class=big>{_v('affected_side.side', side['side'])}</p>"
            f"<table><tr><th>weaker side moves, % of the other</th><td class=num>"
            f"{_v('affected_side.movement_percent', side['movement_percent'], '{:.1f}')}</td></tr>"
            f"<tr><th>confidence (bootstrap over the measured frames)</th><td class=num>"
            f"{_v('affected_side.confidence', side['confidence'], '{:.3f}')}</td></tr>"
            f"<tr><th>largest movement, in noise floors</th><td class=num>"
            f"{_v('affected_side.noise_units', side['noise_units'], '{:.2f}')}</td></tr>"
            f"<tr><th>image side</th><td>{_v('affected_side.image_side', side['image_side'])}</td></tr></table>"
            f"<p>{_e(side['reason'][:1].upper() + side['reason'][1:])}.</p>"
            f"<p class=small>{_e(data['side_convention'])}</p>")


def _mm(data, iod):
    """`` (x.x mm)`` after a distance in IOD, by the report's calibration."""
    calibration = data.get("calibration")
    if not calibration or iod is None:
        return ""
    return f" <span class=small>({iod * calibration['mm_per_iod']:.1f} mm)</span>"


def _regions_section(data, images):
    rows = []
    for k, r in enumerate(data["regions"]):
        closure = ""
        if "closure_percent" in r:
            c = r.get("closure") or {}
            closure = (f"closes {_v(f'regions.{k}.closure.left', c.get('left'), '{:.2f}')} (left) / "
                       f"{_v(f'regions.{k}.closure.right', c.get('right'), '{:.2f}')} (right); completeness "
                       f"{_v(f'regions.{k}.closure_percent', r['closure_percent'], '{:.1f}')}%")
        rows.append(
            f"<tr><td>{_e(r['name'])}</td><td class=num>{_v(f'regions.{k}.movement.left', r['movement']['left'], '{:.3f}')}"
            f"{_mm(data, r['movement']['left'])}</td><td class=num>"
            f"{_v(f'regions.{k}.movement.right', r['movement']['right'], '{:.3f}')}{_mm(data, r['movement']['right'])}</td>"
            f"<td>{_e(r['compared_side'])}</td><td class=num>{_v(f'regions.{k}.percent', r['percent'], '{:.1f}')}</td>"
            f"<td>{_v(f'regions.{k}.level', r['level'])}</td><td>{closure}</td><td class=small>{_e(r['items'])}</td></tr>")
    return ("<h2>Regions</h2><table><tr><th>region</th><th>movement, patient's left</th><th>movement, patient's "
            "right</th><th>side compared</th><th>% of the other side</th><th>level</th><th>eye closure</th>"
            "<th>corresponds to (not a validated score)</th></tr>" + "".join(rows) + "</table>"
            "<p class=small>Movement: the region's peak displacement from the rest face over the video (optical flow, "
            "head motion removed; the mean over its parts), in inter-ocular distances"
            + (f" ({_e(data['calibration']['note'])})" if data.get("calibration") else "") + ". Level: fnpgrade's reading of the "
            "percent (I normal, II reduced, III barely perceptible or none), set on synthetic faces, not validated. "
            "Eye closure: share of its rest lid opening each eye closes at most (landmarks); completeness: the "
            "compared eye's closure as a percentage of the other's (the HB 3/4 line).</p>"
            + _figure(images, "regions"))


def _scales_section(data):
    scales = data.get("scales")
    if not scales:
        return ""
    sb, ef = scales["sunnybrook"], scales["eface"]

    def items(part, key, fmt, prefix=""):
        return "".join(f"<tr><td>{_e(prefix + name.replace('_', ' '))}</td><td class=num>"
                       f"{_v(f'scales.{part}.{key}.items.{name}.score', item['score'], fmt)}</td><td class=num>"
                       f"{_v(f'scales.{part}.{key}.items.{name}.value', item['value'], '{:.3f}')}</td>"
                       f"<td class=small>{_e(item['basis'])}</td></tr>" for name, item in scales[part][key]["items"].items())

    composite = ("composite " + _v("scales.sunnybrook.composite", sb["composite"]) if sb["composite"] is not None
                 else "composite not scored; estimate from the items this video shows "
                 + _v("scales.sunnybrook.composite_estimate", sb["composite_estimate"], "{:g}"))
    lacks = list(dict.fromkeys(sb["lacks"] + ef["lacks"]))
    return ("<h2>Clinical scales (this video as one examination)</h2>"
            f"<p>Sunnybrook {composite} (voluntary {_v('scales.sunnybrook.voluntary.score', sb['voluntary']['score'])}, "
            f"resting {_v('scales.sunnybrook.resting.score', sb['resting']['score'])}, synkinesis "
            f"{_v('scales.sunnybrook.synkinesis.score', sb['synkinesis']['score'])}); eFACE total "
            f"{_v('scales.eface.total', ef['total'], '{:g}')} (static {_v('scales.eface.static.score', ef['static']['score'], '{:g}')}, "
            f"dynamic {_v('scales.eface.dynamic.score', ef['dynamic']['score'], '{:g}')}).</p>"
            "<table><tr><th>Sunnybrook item</th><th>score</th><th>value</th><th>measured basis</th></tr>"
            + items("sunnybrook", "voluntary", "{}") + items("sunnybrook", "resting", "{}", "at rest: ") + "</table>"
            "<table><tr><th>eFACE item</th><th>score (0-100)</th><th>value</th><th>measured basis</th></tr>"
            + items("eface", "static", "{:.1f}", "at rest: ") + items("eface", "dynamic", "{:.1f}") + "</table>"
            + (f"<p class=small>Not scored: {_e('; '.join(lacks))}.</p>" if lacks else "")
            + "<p class=small>Rules on the measures, not a clinician's rating and not validated on patients; each "
              "item's formula: docs/sunnybrook.md, docs/eface.md. For a full examination record one video per "
              "expression and use 'fnpgrade examine'.</p>")


def _timeline_section(data, images):
    t = data["timeline"]
    worst = "".join(f"<tr><td>{_v(f'worst_windows.{k}.start_s', w['start_s'], '{:.2f}')} - "
                    f"{_v(f'worst_windows.{k}.end_s', w['end_s'], '{:.2f}')} s</td><td>{_e(w['label'])}</td>"
                    f"<td class=num>{w['severity']:.2f}</td></tr>" for k, w in enumerate(data["worst_windows"]))
    gaps = "".join(f"<tr><td>{g['start_s']:.2f} - {g['end_s']:.2f} s</td><td class=num>{g['n_frames']}</td></tr>"
                   for g in t["gaps"])
    if data["grade"] is None:  # the measures alone: each stretch's side asymmetry against the same rest face
        rows = "".join(f"<tr><td>{w['start_s']:.2f} - {w['end_s']:.2f} s</td><td>{_e(w['weaker_image_side'])}</td>"
                       f"<td class=num>{w['movement_percent']:.1f}</td></tr>" for w in t["windows"])
        return ("<h2>Over time</h2><p>Rest face at " + _v("timeline.rest_s", t["rest_s"], "{:.2f}") + " s. Face "
                f"verified in {_v('timeline.n_found', t['n_found'])} of "
                f"{_v('timeline.n_frames_read', t['n_frames_read'])} frames; "
                f"{_v('timeline.gaps.length', len(t['gaps']))} stretch(es) without a face.</p>"
                + _figure(images, "timeline")
                + "<table><tr><th>stretch</th><th>weaker image side</th><th>weaker side's movement, % of the "
                  "other</th></tr>" + rows + "</table>")
    return (f"<h2>Grade over time</h2><p>{_v('timeline.windows.length', len(t['windows']))} stretches of "
            f"{t['window_frames']} frames at {t['frame_rate']:g} fps over {t['duration_s']:.1f} s. Face verified in "
            f"{_v('timeline.n_found', t['n_found'])} of {_v('timeline.n_frames_read', t['n_frames_read'])} frames "
            f"(coverage {_v('timeline.coverage', t['coverage'], '{:.2f}')}); "
            f"{_v('timeline.gaps.length', len(t['gaps']))} stretch(es) without a face, "
            f"{_v('timeline.n_frames_without_face', t['n_frames_without_face'])} frames, shown as gaps and not "
            f"graded; {t['n_interpolated']} frames interpolated across short gaps; {t['n_frames_unwindowed']} frames "
            "in stretches too short for a window.</p>"
            + _figure(images, "timeline")
            + "<table><tr><th>worst stretches</th><th>level</th><th>severity (0-1)</th></tr>" + worst + "</table>"
            + ("<table><tr><th>no face</th><th>frames</th></tr>" + gaps + "</table>" if gaps else "")
            + _figure(images, "montage"))


def _explanation_section(data, images):
    e = data.get("explanation")
    if not e:
        return ""
    body = ""
    if e.get("kind") == "measures":
        body = ("<table><tr><th>measure</th><th>value (median)</th><th>symmetric value</th><th>drop in P(grade)</th>"
                "</tr>" + "".join(f"<tr><td>{_e(m['measure'])}</td><td class=num>{m['value']:.3f}</td><td class=num>"
                                  f"{m['symmetric']:.3f}</td><td class=num>"
                                  f"{_v(f'explanation.measures.{k}.contribution', m['contribution'], '{:.3f}')}</td></tr>"
                                  for k, m in enumerate(e["measures"])) + "</table>"
                "<p>By region: " + ", ".join(f"{_e(r)} {_v(f'explanation.regions.{r}', v, '{:.3f}')}"
                                             for r, v in e["regions"].items()) + "</p>")
    elif e.get("kind") == "network":
        body = ("<p>Branch occluded (drop in P(grade)): " + ", ".join(
            f"{_e(b)} {_v(f'explanation.branches.{b}', v, '{:.3f}')}" for b, v in e["branches"].items()) + "</p>")
    return (f"<h2>Why this grade</h2>{body}" + _figure(images, "explanation") + _figure(images, "gradcam")
            + f"<p class=small>How: {_e(e.get('method', ''))}.</p>")


def _model_section(data):
    m = data["model"]
    if m is None:
        return "<h2>Model</h2><p>None: the measures alone.</p>"
    card = m.get("card") or {}
    rows = [("model", m["name"]), ("grader", m["kind"]), ("classes", ", ".join(m["classes"])),
            ("landmarks", m.get("landmarks")), ("fnpgrade version (report)", data["fnpgrade_version"])]
    rows += [(f"model card: {k}", json.dumps(v) if isinstance(v, dict) else v) for k, v in card.items()]
    return ("<h2>Model</h2><table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
            + "</table>")


def render_html(data, images):
    """The report page as one HTML string (see :meth:`fnpgrade.report.Report.to_html`)."""
    warnings = "".join(f"<li class=warn>{_e(w)}</li>" for w in data["warnings"])
    payload = json.dumps(data).replace("</", "<\\/")
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>fnpgrade report: {_e(data['video'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>Facial palsy report: {_e(data['video'])}</h1>"
        f"<p class=disclaimer data-key=disclaimer>{_e(data['disclaimer'])}</p>"
        f"<div class=summary><p class=headline data-key=headline>{_e(headline(data))}</p>"
        + (f"<ul>{warnings}</ul>" if warnings else "") + "</div>"
        + _side_section(data) + _regions_section(data, images) + _scales_section(data) + _grade_section(data)
        + _timeline_section(data, images) + _explanation_section(data, images) + _model_section(data)
        + f"<p class=small>Made {_e(data['created'])} by fnpgrade {_v('fnpgrade_version', data['fnpgrade_version'])}. "
        "The same numbers are in the JSON below and in the report's JSON file.</p>"
        f'<script type="application/json" id="report-data">{payload}</script>'
        "</body></html>")

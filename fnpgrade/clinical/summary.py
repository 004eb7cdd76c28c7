"""One examination's scores as a table row (a study's CSV) and as text (the terminal); visits as a page."""

from __future__ import annotations

__all__ = ["scores_row", "format_scores", "visits_html"]


def scores_row(subject, scores):
    """Flatten :func:`~fnpgrade.clinical.score_examination`'s result into one CSV row.

    Columns: ``subject``, ``affected_side``, ``movement_percent``; Sunnybrook
    ``sb_composite``, ``sb_composite_estimate``, ``sb_resting``,
    ``sb_voluntary``, ``sb_synkinesis`` and each item ``sb_<part>_<item>``;
    eFACE ``eface_total``, ``eface_static``, ``eface_dynamic``,
    ``eface_synkinesis`` and each item ``eface_<part>_<item>``; ``lacks`` (what
    is missing, ``;``-separated). Empty where not scored.
    """
    sb, ef = scores["sunnybrook"], scores["eface"]
    row = {"subject": subject, "affected_side": scores["affected_side"],
           "movement_percent": scores["movement_percent"], "sb_composite": sb["composite"],
           "sb_composite_estimate": sb["composite_estimate"]}
    for part in ("resting", "voluntary", "synkinesis"):
        row[f"sb_{part}"] = sb[part]["score"]
    for part in ("resting", "voluntary", "synkinesis"):
        for item, value in sb[part]["items"].items():
            row[f"sb_{part}_{item}"] = value["score"]
    row["eface_total"] = ef["total"]
    for part in ("static", "dynamic", "synkinesis"):
        row[f"eface_{part}"] = ef[part]["score"]
    for part in ("static", "dynamic", "synkinesis"):
        for item, value in ef[part]["items"].items():
            row[f"eface_{part}_{item}"] = None if value["score"] is None else round(value["score"], 1)
    row["lacks"] = "; ".join(dict.fromkeys(sb["lacks"] + ef["lacks"]))
    return {k: "" if v is None else v for k, v in row.items()}


def format_scores(subject, scores):
    """A few lines for the terminal: side, Sunnybrook parts and composite, eFACE sub-scores, what is missing."""
    sb, ef = scores["sunnybrook"], scores["eface"]

    def show(value):
        return "not scored" if value is None else f"{value:g}"

    scored = sum(v["score"] is not None for v in sb["voluntary"]["items"].values())
    composite = (show(sb["composite"]) if sb["composite"] is not None
                 else f"not scored (estimate from the items shown: {show(sb['composite_estimate'])})")
    lines = [f"{subject}: affected side {scores['affected_side']} (weaker side's movement "
             f"{show(scores['movement_percent'])} % of the other's)",
             f"  Sunnybrook composite {composite}: voluntary {sb['voluntary']['score']} ({scored} of "
             f"{len(sb['voluntary']['items'])} items), resting "
             f"{sb['resting']['score']}, synkinesis {sb['synkinesis']['score']}",
             f"    voluntary items: " + ", ".join(f"{k} {show(v['score'])}" for k, v in sb["voluntary"]["items"].items()),
             f"  eFACE total {show(ef['total'])}: static {show(ef['static']['score'])}, dynamic "
             f"{show(ef['dynamic']['score'])}, synkinesis {show(ef['synkinesis']['score'])}"]
    lacks = list(dict.fromkeys(sb["lacks"] + ef["lacks"]))
    if lacks:
        lines.append("  missing: " + "; ".join(lacks))
    return "\n".join(lines)


def _regions_table(person, rows, cell):
    """Per visit, each region's movement on the side scored (the weaker) as % of the other's, and its change."""
    import html

    items = [item for item in (rows[0].get("regions") or {})]
    if not items:
        return ""
    head = "".join(f"<th>{html.escape(item.replace('_', ' '))}</th><th>change</th>" for item in items)
    body = []
    for k, row in enumerate(rows):
        cells = "".join(cell(person, k, f"regions.{item}", row["regions"].get(item), "{:g}")
                        + cell(person, k, f"regions_change.{item}", row["regions_change"].get(item), "{:+g}")
                        for item in items)
        body.append(f"<tr><td>{html.escape(str(row['visit']))}</td>"
                    f"<td>{html.escape(str(row.get('scored_image_side') or 'n/a'))}</td>{cells}</tr>")
    return ("<h3>Regions: the weaker side's movement, % of the other side's (each expression's own region; "
            "change from the first visit, no noise estimate)</h3><table><tr><th>visit</th><th>weaker side (image)"
            f"</th>{head}</tr>" + "".join(body) + "</table>")


def visits_html(people):
    """One self-contained HTML page comparing each person's visits (no script, no network).

    Parameters
    ----------
    people : dict
        ``{person: rows}``, ``rows`` from :func:`~fnpgrade.clinical.visits.compare_visits`.

    Returns
    -------
    page : str
        Every number carries ``data-key="<person>.<visit index>.<field>"``.
    """
    import html

    def cell(person, k, key, value, fmt="{}"):
        text = "n/a" if value is None else fmt.format(value)
        return f'<td class=num><span data-key="{html.escape(f"{person}.{k}.{key}")}">{html.escape(text)}</span></td>'

    sections = []
    for person, rows in people.items():
        body = []
        for k, row in enumerate(rows):
            verdict = {True: "beyond the noise", False: "within the noise", None: ""}
            body.append(
                f"<tr><td>{html.escape(str(row['visit']))}</td>"
                + cell(person, k, "sunnybrook", row["sunnybrook"], "{:g}") + cell(person, k, "sunnybrook_sd",
                                                                                row["sunnybrook_sd"], "{:g}")
                + cell(person, k, "sunnybrook_change", row["sunnybrook_change"], "{:+g}")
                + f"<td>{verdict[row['sunnybrook_beyond_noise']]}</td>"
                + cell(person, k, "eface", row["eface"], "{:g}") + cell(person, k, "eface_sd", row["eface_sd"], "{:g}")
                + cell(person, k, "eface_change", row["eface_change"], "{:+g}")
                + f"<td>{verdict[row['eface_beyond_noise']]}</td></tr>")
        sections.append(f"<h2>{html.escape(str(person))}</h2><table><tr><th>visit</th><th>Sunnybrook composite "
                        "(or estimate)</th><th>SD</th><th>change from the first visit</th><th></th><th>eFACE total"
                        "</th><th>SD</th><th>change</th><th></th></tr>" + "".join(body) + "</table>"
                        + _regions_table(person, rows, cell))
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>fnpgrade: visits compared</title><style>"
            "body{font-family:system-ui,Arial,sans-serif;max-width:1000px;margin:0 auto;padding:16px 24px}"
            "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 8px}td.num{text-align:right}"
            ".disclaimer{background:#fff3cd;border:1px solid #e0b400;padding:8px 12px;font-weight:600}"
            "</style></head><body><h1>Visits compared</h1><p class=disclaimer>Research software, not a diagnosis: "
            "scores computed by rules from video measures (docs/sunnybrook.md, docs/eface.md), not validated on "
            "patients.</p><p>SD: each score's standard deviation over resamples of each video's measured frames "
            "(the measurement's own noise). A change counts when it exceeds 1.96 standard deviations of the "
            "difference.</p>" + "".join(sections) + "</body></html>")

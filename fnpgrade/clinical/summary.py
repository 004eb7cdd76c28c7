"""One examination's scores as a table row (a study's CSV) and as text (the terminal)."""

from __future__ import annotations

__all__ = ["scores_row", "format_scores"]


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

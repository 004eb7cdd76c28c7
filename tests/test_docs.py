"""The code blocks of the user docs run as written.

Each page's ``python`` blocks run in order in one namespace, in a fresh folder
that holds ``my_study/`` (a small study of videos with ``labels.csv``, as the
pages assume of the reader). The default run shrinks the training (fewer
synthetic subjects, one epoch, two folds) through substitutions that must each
apply, so a page that changes is still run; ``-m slow`` runs the pages
verbatim. Every ``fnpgrade ...`` line of a ``bash`` block must parse with the
command's own parser.
"""

import csv
import re
import shlex
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = ["quickstart.md", "api.md", "evaluation.md", "reliability.md", "measures.md", "report.md", "sunnybrook.md",
         "eface.md"]

# (old, new): applied to the page's python code in the default (fast) run; each must occur.
FAST = {
    "quickstart.md": [("n_subjects=12, clips_per_subject=8", "n_subjects=4, clips_per_subject=2"),
                      ("max_epochs=30", "max_epochs=1"), ("StratifiedGroupKFold(4)", "StratifiedGroupKFold(2)")],
    "api.md": [("n_subjects=12, clips_per_subject=8", "n_subjects=6, clips_per_subject=2"),
               ("n_subjects=12, clips_per_subject=3", "n_subjects=6, clips_per_subject=2"),
               ("max_epochs=30", "max_epochs=1")],
    "report.md": [("n_subjects=12, clips_per_subject=4", "n_subjects=6, clips_per_subject=2")],
    "measures.md": [("n_subjects=12, clips_per_subject=4", "n_subjects=6, clips_per_subject=3"),
                    ('info["subject"] < 8', 'info["subject"] < 4')],
    "evaluation.md": [("n_subjects=12, clips_per_subject=8", "n_subjects=6, clips_per_subject=2"),
                      ("max_epochs=30", "max_epochs=1"), ("n_splits=5", "n_splits=2")],
}


def _blocks(page, language):
    text = (DOCS / page).read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


@pytest.fixture
def in_a_study_folder(tmp_path, monkeypatch):
    """A fresh working folder with ``my_study/``: 4 people's videos (8 of 4 frames) and labels.csv."""
    from fnpgrade import make_palsy_clips
    from fnpgrade.io import write_video

    study = tmp_path / "my_study"
    study.mkdir()
    X, _, groups, info = make_palsy_clips(n_subjects=4, clips_per_subject=2, frames_per_clip=4, random_state=5,
                                          return_info=True)
    with open(study / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "grade", "path"])
        for i, clip in enumerate(X):
            write_video(study / f"p{i:02d}.avi", clip, fps=6)
            writer.writerow([f"person{groups[i]}", int(info["hb"][i]), f"p{i:02d}.avi"])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run_page(page, fast, capsys):
    code = "\n".join(_blocks(page, "python"))
    if fast:
        for old, new in FAST.get(page, []):
            assert old in code, f"{page}: the fast run's substitution {old!r} no longer applies; update FAST"
            code = code.replace(old, new)
    namespace = {"__name__": "__docs__"}
    exec(compile(code, f"docs/{page}", "exec"), namespace)  # noqa: S102 - the docs are this repository's own
    return namespace, capsys.readouterr().out


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(one_torch_thread):
    yield


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "python")])
def test_python_blocks_run(page, in_a_study_folder, capsys):
    namespace, out = _run_page(page, fast=True, capsys=capsys)
    assert "np.float64" not in out  # scores print as numbers
    if page == "quickstart.md":
        assert "no_face.mp4: no face found" in out  # the page's no-face example refuses the video
        assert (in_a_study_folder / "confusion.png").exists() and (in_a_study_folder / "model.joblib").exists()
        assert namespace["model"].predict_proba([str(namespace["video"])]).shape == (1, 3)
    if page == "evaluation.md":
        assert namespace["report"]["accuracy"] == pytest.approx(4 / 6)


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "python")])
def test_python_blocks_run_verbatim(page, in_a_study_folder, capsys):
    _run_page(page, fast=False, capsys=capsys)


@pytest.mark.parametrize("page", PAGES + ["../README.md", "scale.md"])  # scale.md's Python needs a cluster
def test_every_documented_command_parses(page):
    from fnpgrade.cli import build_parser
    from fnpgrade.datasets import media

    text = (DOCS / page).read_text()
    lines = [line for block in _blocks(page, "bash") for line in block.splitlines()]
    # inline commands with options (a bare "`fnpgrade predict`" in prose names the command, it is not one)
    lines += re.findall(r"`(fnpgrade (?:demo|cv|train|predict|report|preview|preprocess) [^`]+)`", text)
    commands = [shlex.split(line.split("#")[0]) for line in lines]
    media_command = ["python", "-m", "fnpgrade.datasets.media"]
    commands = [c for c in commands if c and (c[0] == "fnpgrade" or c[:3] == media_command)]
    for command in commands:
        if "..." in command:  # "fnpgrade train ... --out model.joblib": an elided example, not a command
            continue
        parser = build_parser() if command[0] == "fnpgrade" else media.build_parser()
        try:
            parser.parse_args(command[1:] if command[0] == "fnpgrade" else command[3:])
        except SystemExit:
            pytest.fail(f"{page}: the documented command does not parse: {' '.join(command)}")


# an accuracy-like measure named, then a figure close after it in the same sentence: a result
_RESULT_IN_DOCSTRING = re.compile(r"\b(accuracy|accurate|qwk|kappa|f1|auc|brier|recall|graded|grades|correlation|"
                                  r"spearman|pearson)\b[^.\n]{0,60}?\b(0\.\d{2,3}|\d{2}(\.\d)? ?%)", re.I)


def test_docstrings_state_no_results():
    """Each result is stated once, in docs/results.md and benchmarks/results/: a docstring says what a thing does
    and when to use it, and a measured accuracy in it goes stale with the next run."""
    import ast

    hits = []
    for path in sorted((DOCS.parent / "fnpgrade").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                match = _RESULT_IN_DOCSTRING.search(ast.get_docstring(node) or "")
                if match:
                    hits.append(f"{path.name}:{getattr(node, 'name', '<module>')}: {match.group(0)!r}")
    assert not hits, "results in docstrings (move them to docs/results.md):\n" + "\n".join(hits)

"""LaTeX tables: parsed back (booktabs rules, one cell per column on every row) and checked against numpy."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from robustviz.cube.robustness import ALEXNET_ERRORS
from robustviz.figures import tables
from robustviz.testing import make_cube


@pytest.fixture(scope="module")
def cube():
    return make_cube(n_models=3, n_perturbations=4, n_methods=2, n_samples=30, n_examples=1, image_size=8, seed=5)


def parse(latex: str) -> dict:
    """Parse a booktabs table: the column spec, the header and body rows (cells split on unescaped &)."""
    lines = [line.strip() for line in latex.strip().splitlines()]
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", latex).group(1)
    assert [line for line in lines if line in (r"\toprule", r"\midrule", r"\bottomrule")] == \
        [r"\toprule", r"\midrule", r"\bottomrule"], "the three booktabs rules, once each, in order"
    top, mid, bottom = (lines.index(rule) for rule in (r"\toprule", r"\midrule", r"\bottomrule"))

    def cells(line: str) -> list[str]:
        assert line.endswith(r"\\"), line
        return [cell.strip() for cell in re.split(r"(?<!\\)&", line[:-2])]

    header = [cells(line) for line in lines[top + 1:mid]]
    body = [cells(line) for line in lines[mid + 1:bottom]]
    for row in header + body:
        assert len(row) == len(spec), f"{len(row)} cells for {len(spec)} columns: {row}"
    return {"spec": spec, "header": header, "body": body, "lines": lines}


def number(cell: str) -> float:
    cell = re.sub(r"\\textbf\{(.*)\}", r"\1", cell)
    return float("nan") if cell == "--" else float(cell)


def test_to_latex_structure_escaping_missing_values_and_bold():
    table = pd.DataFrame({"gaussian_noise": [0.5, np.nan, 0.25], "50% & more": [1.0, 2.0, 3.0],
                          "count": [1, 2, 3]}, index=pd.Index(["a_b", "c", "d"], name="model"))
    latex = tables.to_latex(table, caption="Scores #1", label="tab:x", digits=2, highlight="max")
    parsed = parse(latex)
    assert parsed["spec"] == "lrrr"
    assert parsed["header"] == [["model", r"gaussian\_noise", r"50\% \& more", "count"]]
    assert parsed["body"][0] == ["a\\_b", "0.50", r"\textbf{1.00}", "1"]  # the count column is not highlighted
    assert parsed["body"][1] == ["c", "--", r"\textbf{2.00}", "2"]
    assert r"\caption{Scores \#1}" in latex and r"\label{tab:x}" in latex
    assert latex.startswith(r"\begin{table}") and latex.rstrip().endswith(r"\end{table}")
    bare = tables.to_latex(table, float_environment=False, index=False)
    assert bare.startswith(r"\begin{tabular}{rrr}") and r"\caption" not in bare
    assert len(parse(bare)["body"][2]) == 3


def test_to_latex_highlights_columns_minimum():
    table = pd.DataFrame({"x": [3.0, 1.0, 2.0], "y": [0.1, 0.3, 0.2]}, index=["p", "q", "r"])
    body = parse(tables.to_latex(table, highlight="min", highlight_axis="columns"))["body"]
    assert [cell.startswith(r"\textbf") for cell in (body[1][1], body[0][2])] == [True, True]
    assert sum(cell.startswith(r"\textbf") for row in body for cell in row) == 2


def test_to_latex_errors():
    with pytest.raises(TypeError, match="DataFrame"):
        tables.to_latex({"a": [1]})
    with pytest.raises(ValueError, match="highlight must be"):
        tables.to_latex(pd.DataFrame({"a": [1.0]}), highlight="best")
    with pytest.raises(ValueError, match="not columns of the table"):
        tables.to_latex(pd.DataFrame({"a": [1.0]}), highlight="max", highlight_columns=["b"])


def test_accuracy_table_matches_numpy_and_parses(cube):
    table = tables.accuracy_table(cube)
    correct = cube["correct"].values.astype(np.float64)  # model, perturbation, severity, sample
    expected = 100 * correct[:, :, 1:].mean(axis=(2, 3)).T  # perturbation × model
    np.testing.assert_allclose(table.loc[[str(p) for p in cube["perturbation"].values]].values, expected)
    np.testing.assert_allclose(table.loc["clean"].values, 100 * correct[:, 0, 0].mean(axis=-1))
    np.testing.assert_allclose(table.loc["mean"].values, expected.mean(axis=0))
    assert list(table.index)[0] == "clean" and list(table.index)[-1] == "mean"
    parsed = parse(tables.to_latex(table, digits=1, highlight="max"))
    assert len(parsed["body"]) == cube.sizes["perturbation"] + 2
    assert parsed["header"][0][1:] == [str(m) for m in cube["model"].values]
    for row, values in zip(parsed["body"][1:-1], expected):
        best = [cell.startswith(r"\textbf") for cell in row[1:]]
        assert best == list(values == values.max())
        np.testing.assert_allclose([number(cell) for cell in row[1:]], values, atol=0.05)


def test_mce_table_matches_the_imagenet_c_formula(cube):
    table = tables.mce_table(cube)
    error = 1 - cube["correct"].values.astype(np.float64).mean(axis=-1)  # model, perturbation, severity
    names = [str(p) for p in cube["perturbation"].values]
    known = [i for i, name in enumerate(names) if name in ALEXNET_ERRORS]
    alexnet = np.array([ALEXNET_ERRORS[names[i]] for i in known])
    ce = error[:, known, 1:].sum(axis=-1) / (5 * alexnet)
    np.testing.assert_allclose(table["mCE"].values, 100 * ce.mean(axis=1))
    np.testing.assert_allclose(table["clean error"].values, 100 * error[:, 0, 0])
    assert (table["corruptions"] == len(known)).all()
    assert len(parse(tables.to_latex(table))["body"]) == cube.sizes["model"]


def test_method_and_spectral_tables(cube):
    methods = tables.method_table(cube, ["cosine", "deletion_auc"])
    cosine = cube["cosine"].values.astype(np.float64)[:, :, 1:]  # model, perturbation, severity, method, sample
    np.testing.assert_allclose(methods["cosine"].values, cosine.mean(axis=(0, 1, 2, 4)), rtol=1e-10)
    assert list(methods.index) == [str(m) for m in cube["method"].values]
    spectral = tables.spectral_table(cube)
    np.testing.assert_allclose(spectral["SRS"].values, cube["srs"].values)
    np.testing.assert_allclose(spectral["clean accuracy"].values,
                               cube["correct"].values[:, :, 0].astype(float).mean(axis=(1, 2)))
    assert len(parse(tables.to_latex(spectral))["header"][0]) == 4
    with pytest.raises(ValueError, match="'srs'"):
        tables.spectral_table(cube.drop_vars("srs"))

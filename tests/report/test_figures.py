"""Figures render: PNG bytes, the expected axes, bands for large cohorts, plotly JSON."""

from __future__ import annotations

import json

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.report import figures as f
from immunoreset.report.tables import AnalysisSettings, analyse_cohort

PNG = b"\x89PNG\r\n\x1a\n"

# (function, expected number of axes) — disease scores: 5 instruments in the demo + 1 blank
FIGURES = [
    (f.plot_car_t, 1),
    (f.plot_bcells, 1),
    (f.plot_autoantibodies, 1),
    (f.plot_disease_scores, 6),
    (f.plot_swimmer, 1),
    (f.plot_km, 2),  # the curve and its number-at-risk table
]


@pytest.mark.parametrize(("fn", "n_axes"), FIGURES)
def test_figure_renders(analysis, fn, n_axes):
    plot = fn(analysis)
    data = plot.png(dpi=50)
    assert data.startswith(PNG) and len(data) > 2_000
    assert len(plot.figure.axes) == n_axes
    assert plot.caption


def test_small_cohort_draws_one_line_per_patient(analysis):
    plot = f.plot_car_t(analysis)
    assert len(plot.figure.axes[0].lines) == 8 + 2  # 8 patients, LLOQ and day-0 lines
    assert "One line per patient" in plot.caption


def test_scales(analysis):
    assert f.plot_car_t(analysis, assay="qpcr").figure.axes[0].get_yscale() == "log"
    assert f.plot_bcells(analysis).figure.axes[0].get_yscale() == "symlog"
    assert f.plot_autoantibodies(analysis).figure.axes[0].get_yscale() == "log"


def test_large_cohort_draws_bands(published):
    a = analyse_cohort(published, settings=AnalysisSettings(max_lines=2, max_swimmers=3))
    plot = f.plot_car_t(a)
    ax = plot.figure.axes[0]
    assert len(ax.collections) >= 1  # the 5–95 % band of SLE (4 patients ≥ 3 per bin)
    assert "5th–95th percentile" in plot.caption
    swim = f.plot_swimmer(a)
    assert "3 of 8 patients shown" in swim.caption
    assert len(swim.figure.axes[0].get_yticks()) == 3


def test_patient_figure(analysis, published):
    plot = f.plot_patient(published[2], analysis)  # RM-003, JDM: no autoantibody measured
    shown = [ax for ax in plot.figure.axes if ax.axison]
    titles = [ax.get_title() for ax in shown]
    assert titles == [
        "CAR T cells (flow cytometry)",
        "CD19⁺ B cells",
        "CMAS (0–52)",
        "MMT8 (0–80)",
        "Physician global (0–10)",
    ]
    assert all(ax.get_ylabel() for ax in shown)  # a y label on every panel
    assert [t.get_text() for ax in shown for t in ax.texts if t.get_fontweight() == "bold"] == [
        "A",
        "B",
        "C",
        "D",
        "E",
    ]
    assert "E, Physician global (points, 0–10)" in plot.caption
    assert plot.png(dpi=40).startswith(PNG)
    alone = f.plot_patient(published[2])
    assert len(alone.figure.axes) == len(plot.figure.axes)
    sle = f.plot_patient(published[1], analysis)  # RM-002, SLE: anti-dsDNA panel
    assert "Autoantibodies" in [ax.get_title() for ax in sle.figure.axes]


def test_patient_figure_bad_input(analysis, published):
    with pytest.raises(InvalidInput) as err:
        f.plot_patient("RM-003")
    assert err.value.field == "course"
    from dataclasses import replace

    other = replace(published[0], patient=replace(published[0].patient, study_id="RM-777"))
    with pytest.raises(InvalidInput):
        f.plot_patient(other, analysis)


def test_unknown_assay(analysis):
    with pytest.raises(InvalidInput) as err:
        f.plot_car_t(analysis, assay="elisa")
    assert err.value.field == "assay"


PLOTLY = [f.car_t_plotly, f.bcells_plotly, f.autoantibodies_plotly, f.swimmer_plotly, f.km_plotly]


@pytest.mark.parametrize("fn", PLOTLY)
def test_plotly_json(analysis, fn):
    fig = fn(analysis)
    assert isinstance(fig, dict) and fig["data"]
    json.dumps(fig)  # plain JSON, reusable by the web app


def test_plotly_scores(analysis):
    figs = f.disease_scores_plotly(analysis)
    assert set(figs) == {"sledai2k", "cmas", "mmt8", "mrss", "md_global"}


def test_data_uri(analysis):
    uri = f.plot_km(analysis).data_uri(dpi=40)
    assert uri.startswith("data:image/png;base64,")


def test_svg_is_vector(analysis):
    p = f.plot_km(analysis)
    svg = p.svg().decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "<path" in svg
    assert "<image" not in svg  # no raster embedded
    assert p.data_uri().startswith("data:image/svg+xml;base64,")


def test_km_has_number_at_risk_table(analysis):
    p = f.plot_km(analysis)
    main, risk = p.figure.axes
    assert risk.get_yticklabels()[0].get_text() == "At risk"
    counts = [int(t.get_text()) for t in risk.texts]
    km = analysis.km
    times = risk.get_xticks()
    assert counts == km.at_risk(times)
    assert counts[0] == km.n and counts == sorted(counts, reverse=True)
    assert "number still at risk" in p.caption
    assert main.get_ylabel() == "Proportion still B-cell aplastic"

"""The report builds to HTML and PDF, holds every section, and shows no identifying data."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from immunoreset.errors import InvalidInput, NotFound
from immunoreset.report.case_series import (
    SECTION_HEADINGS,
    build_report,
    methods_items,
)


class _Outline(HTMLParser):
    """Collects h1/h2 texts, img sources and every link the page would fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.images: list[str] = []
        self.fetches: list[str] = []
        self._in: str | None = None
        self.banner = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("h1", "h2"):
            self._in = tag
            self.headings.append("")
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag in ("link", "script") or (tag == "img" and not a["src"].startswith("data:")):
            self.fetches.append(a.get("href") or a.get("src") or tag)
        if a.get("class") == "banner":
            self.banner = True

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            self.headings[-1] += data


def _outline(path) -> _Outline:
    p = _Outline()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_html_and_pdf_written(built_report):
    assert built_report.html.name == "case-series.html"
    assert built_report.pdf.read_bytes().startswith(b"%PDF-")
    assert built_report.pdf.stat().st_size > 50_000
    assert built_report.n_patients == 8
    assert {"load", "analysis", "figures", "html", "pdf"} <= set(built_report.timings)


@pytest.mark.parametrize("heading", list(SECTION_HEADINGS.values()))
def test_every_section_heading(built_report, heading):
    assert heading in _outline(built_report.html).headings


def test_self_contained_with_banner(built_report):
    o = _outline(built_report.html)
    assert o.banner
    assert o.fetches == []
    assert len(o.images) >= 7 and all(s.startswith("data:image/svg+xml;base64,") for s in o.images)


def test_no_names_or_birth_dates(built_report, published):
    text = built_report.html.read_text(encoding="utf-8")
    stripped = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+", "", text)
    cutoff = re.search(r"data cut-off (\d{4}-\d\d-\d\d)", stripped).group(1)
    generated = re.search(r"generated (\d{4}-\d\d-\d\d)", stripped).group(1)
    # the only calendar dates: the data cut-off (the latest last contact) and today
    assert cutoff == max(co.last_contact for co in published).isoformat()
    assert not re.search(
        r"\b(19|20)\d\d-\d\d-\d\d\b", stripped.replace(generated, "").replace(cutoff, "")
    )
    for co in published:
        assert f"{co.patient.birth_year}-{co.patient.birth_month:02d}" not in stripped
        assert str(co.day0) not in stripped


@pytest.mark.parametrize(
    "phrase",
    [
        "ASTCT 2019",
        "CAPD score below it",
        "counted as days below each threshold added up",
        "CTCAE v5.0",
        "< 1 cells/µL",
        "≥ 10 cells/µL",
        "linear-up/log-down",
        "the PKNCA default",
        "106.5 (95 % CI 91 to not reached) days, n = 8",
        "not confirmed by the source",
        "Data cut-off",
        "Settings used",
        "Table 2.",
        "Figure 4.",
        "30.4375",
        "Clopper–Pearson",
        "6/8 (75 %; 95 % CI 35–97 %)",
    ],
)
def test_methods_and_values_in_report(built_report, phrase):
    assert phrase in html.unescape(built_report.html.read_text(encoding="utf-8"))


def test_methods_follow_settings():
    from immunoreset.clinical.settings import ToxicitySettings
    from immunoreset.report.tables import AnalysisSettings

    s = AnalysisSettings(toxicity=ToxicitySettings(capd_age_rule="ncit_12_and_under"))
    text = dict(methods_items(s))["ICANS"]
    assert "from age 13 years" in text
    with pytest.raises(InvalidInput):
        methods_items("default")


def test_patient_report(published, tmp_path):
    paths = build_report(published, out_dir=tmp_path, patient="RM-003")
    assert paths.html.name == "patient-RM-003.html"
    assert paths.pdf.read_bytes().startswith(b"%PDF-")
    o = _outline(paths.html)
    assert "Patient summary: RM-003" in o.headings
    assert o.banner and len(o.images) == 1
    text = paths.html.read_text(encoding="utf-8")
    assert "RM-001" not in text  # nobody else's data


def test_patient_report_fits_one_page(published, tmp_path):
    import weasyprint

    paths = build_report(published, out_dir=tmp_path, patient="RM-003", pdf=False)
    assert paths.pdf is None
    assert len(weasyprint.HTML(filename=str(paths.html)).render().pages) == 1
    text = paths.html.read_text(encoding="utf-8")
    assert "ICD-10 M33.09" in text  # as stored, not the chapter M33.0
    assert "Autoantibodies</h" not in text and "anti_" not in text  # no empty panel or keys


def test_patient_report_not_yet_reached(published, tmp_path):
    paths = build_report(published, out_dir=tmp_path, patient="ER-003", pdf=False)
    text = paths.html.read_text(encoding="utf-8")
    assert "M12 not yet reached" in text  # followed 9 months
    assert "md_global" not in text and "Physician global (0–10)" in text


def test_patients_table(built_report, published):
    text = built_report.html.read_text(encoding="utf-8")
    assert "Characteristics, toxicity and outcome of each patient (n = 8)" in text
    for co in published:
        assert f"<td>{co.study_id}</td>" in text
        assert f"({co.patient.icd10})" in text


def test_filters(published, tmp_path):
    paths = build_report(published, out_dir=tmp_path, diagnosis="JDM", pdf=False)
    assert paths.n_patients == 3
    paths = build_report(published, out_dir=tmp_path, site="ERLANGEN", pdf=False)
    assert paths.n_patients == 3


def test_from_registry(demo_registry, tmp_path):
    paths = build_report(demo_registry, out_dir=tmp_path, site="ROME", pdf=False)
    assert paths.n_patients == 5
    one = build_report(demo_registry, out_dir=tmp_path, patient="ER-002", pdf=False)
    assert one.html.name == "patient-ER-002.html"


def test_registry_site_rules(demo_registry, tmp_path):
    from immunoreset.registry import Actor

    erlangen = Actor(username="nurse", role="investigator", sites=frozenset({"ERLANGEN"}))
    paths = build_report(demo_registry, out_dir=tmp_path, actor=erlangen, pdf=False)
    assert paths.n_patients == 3
    with pytest.raises(NotFound):
        build_report(demo_registry, out_dir=tmp_path, actor=erlangen, patient="RM-003")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"out_dir": None}, "out_dir"),
        ({"out_dir": ""}, "out_dir"),
        ({"diagnosis": "lupus"}, "diagnosis"),
        ({"site": ""}, "site"),
        ({"site": "NOWHERE"}, "site"),
        ({"patient": "patient 3"}, "patient"),
        ({"pdf": "yes"}, "pdf"),
        ({"settings": {}}, "settings"),
    ],
)
def test_bad_arguments(published, tmp_path, kwargs, field):
    args = {"out_dir": tmp_path, **kwargs}
    with pytest.raises(InvalidInput) as err:
        build_report(published, **args)
    assert err.value.field == field


def test_unknown_patient(published, tmp_path):
    with pytest.raises(NotFound):
        build_report(published, out_dir=tmp_path, patient="RM-999")


def test_bad_source(tmp_path):
    with pytest.raises(InvalidInput) as err:
        build_report("registry.db", out_dir=tmp_path)
    assert err.value.field == "registry_or_courses"
    with pytest.raises(InvalidInput):
        build_report([1], out_dir=tmp_path)


def test_out_dir_is_a_file(published, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(InvalidInput) as err:
        build_report(published, out_dir=target)
    assert err.value.field == "out_dir"

"""The three newer schemes through the CLI: `launch schemes` lists them with domains and references, each scheme's
methods link points at a section of docs/methods.md, and bad two_way temperatures stop a sweep at the door (exit 2,
the key named, nothing written). In-process (Click's runner); no Ray."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tailsweep.losses import METHODS_DOC, SCHEMES
from tailsweep.orchestrator.cli import main

NEW = ("two_way", "multilabel_softmax", "apl")
ROOT = Path(__file__).resolve().parents[2]


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, " ".join((result.output or "").split())


def test_schemes_json_lists_the_new_schemes_with_domains_and_references():
    code, out = _run("schemes", "--json")
    listed = json.loads(out)
    assert code == 0 and set(NEW) <= set(listed)
    assert "Kobayashi, CVPR 2023" in listed["two_way"]["paper"]
    assert "2208.02955" in listed["multilabel_softmax"]["paper"]
    assert "2304.05361" in listed["apl"]["paper"]
    t_pos = listed["two_way"]["params"]["t_pos"]
    assert (t_pos["default"], t_pos["domain"], t_pos["range"], t_pos["scale"]) == (4.0, "> 0", [1.0, 8.0], "log")
    assert listed["apl"]["params"]["clip"]["domain"] == "in [0, 1)"
    assert listed["apl"]["params"]["epsilon_pos2"]["default"] == -2.5
    assert listed["multilabel_softmax"]["params"] == {}
    assert listed["focal"]["params"]["alpha"]["domain"] == "in [0, 1] or null"


def test_every_scheme_links_a_section_of_the_methods_document():
    text = (ROOT / METHODS_DOC).read_text()
    # GitHub's heading anchors: lower case, punctuation but - and _ dropped, spaces to -
    anchors = {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)
    }
    _, out = _run("schemes", "--json")
    for name, entry in json.loads(out).items():
        doc, _, anchor = entry["methods"].partition("#")
        assert doc == METHODS_DOC and anchor == name and anchor in anchors, f"no section for {name} in {doc}"


def test_schemes_table_has_a_line_for_each_and_points_to_the_methods_document():
    code, out = _run("schemes")
    assert code == 0
    for name in SCHEMES:
        assert name in out
    assert "t_pos=4.0 [1.0, 8.0] log" in out and "epsilon_pos2=-2.5" in out
    assert "docs/methods.md" in out and "METHODS.md" not in out


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("schemes=[{name: two_way, params: {t_pos: 0}}]", "scheme 'two_way' parameter 't_pos' must be > 0, got 0"),
        (
            "schemes=[{name: two_way, params: {t_neg: -1.5}}]",
            "scheme 'two_way' parameter 't_neg' must be > 0, got -1.5",
        ),
        (
            "schemes=[{name: two_way, search: {t_neg: [0, 2]}}]",
            "scheme 'two_way' parameter 't_neg' search range end low must be > 0, got 0",
        ),
        ("schemes=[{name: apl, params: {clip: 1}}]", "scheme 'apl' parameter 'clip' must be in [0, 1), got 1"),
        ("schemes=[{name: multilabel_softmax, params: {tau: 1}}]", "has no parameter 'tau' (it takes none)"),
    ],
)
def test_bad_new_scheme_params_exit_2_naming_the_key(tmp_path, override, expected):
    runs = tmp_path / "runs"
    code, out = _run("sweep", "--dry-run", "--set", f"tracking.dir={runs}", "--set", override)
    assert code == 2, out
    assert expected in out and "Traceback" not in out
    assert not runs.exists()

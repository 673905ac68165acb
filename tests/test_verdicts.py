"""The verdict rule (deepcrl.viz.compare) against scipy's Welch test, and the docs against the kept data:
experiments/verdicts.py recomputes every verdict from experiments/results/, and docs/findings.md must
carry exactly that table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from deepcrl.viz.compare import Difference, difference, verdict

ROOT = Path(__file__).resolve().parent.parent


def _verdicts_module():
    spec = importlib.util.spec_from_file_location("verdicts", ROOT / "experiments" / "verdicts.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["verdicts"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", range(4))
def test_welch_interval_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.6, 0.2, size=5), rng.normal(0.3, 0.05, size=7)
    d = difference(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    np.testing.assert_allclose([d.low, d.high], [ci.low, ci.high], rtol=1e-9)
    assert d.diff == pytest.approx(a.mean() - b.mean())
    assert d.se_a == pytest.approx(a.std(ddof=1) / np.sqrt(5))


def test_verdicts_follow_the_interval_and_need_five_seeds():
    clear = difference([0.9, 0.95, 1.0, 0.92, 0.97], [0.1, 0.0, 0.2, 0.05, 0.15])
    assert clear.low > 0 and verdict(clear) == "holds"
    assert verdict(difference([0.1, 0.0, 0.2, 0.05, 0.15], [0.9, 0.95, 1.0, 0.92, 0.97])) == "opposite"
    overlap = difference([0.77, 0.46, 0.94, 0.92, 0.5], [0.57, 0.47, 0.92, 0.32, 0.6])
    assert overlap.low < 0 < overlap.high and verdict(overlap) == "inconclusive"
    three = difference([0.9, 0.95, 1.0], [0.1, 0.0, 0.2])
    assert verdict(three) == "too few seeds"
    # no spread on either side: the interval is the point
    flat = difference([1.0] * 5, [0.0] * 5)
    assert (flat.low, flat.high, verdict(flat)) == (1.0, 1.0, "holds")
    assert isinstance(flat, Difference) and flat.text() == "+1.00 [+1.00, +1.00]"
    with pytest.raises(ValueError, match="at least 2 seeds"):
        difference([1.0], [0.0, 1.0])


def test_findings_carry_the_verdicts_the_kept_data_gives():
    verdicts = _verdicts_module()
    spec = verdicts.load_spec()
    rows = verdicts.compute(spec)
    assert len(rows) == len(spec["verdicts"]) and rows
    table = verdicts.doc_table((ROOT / "docs" / "findings.md").read_text())
    assert table is not None, "docs/findings.md lost its verdicts markers"
    assert table == verdicts.markdown(rows), (
        "docs/findings.md's verdict table differs from the data: run python experiments/verdicts.py --write-docs"
    )


def test_a_side_that_matches_no_setting_or_two_is_an_error():
    verdicts = _verdicts_module()

    class G:
        def __init__(self, label, **settings):
            self.label, self.settings = label, settings

    groups = [G("depth 4", depth=4, agent="crl"), G("depth 16", depth=16, agent="crl")]
    assert verdicts.select(groups, {"depth": 16}, "x").label == "depth 16"
    with pytest.raises(ValueError, match="matches 2 settings"):
        verdicts.select(groups, {"agent": "crl"}, "x")
    with pytest.raises(ValueError, match="matches 0 settings"):
        verdicts.select(groups, {"depth": 8}, "x")


def test_every_interval_the_readme_quotes_is_one_the_data_gives():
    import re

    verdicts = _verdicts_module()
    computed = {r["text"] for r in verdicts.compute(verdicts.load_spec())}
    text = (ROOT / "README.md").read_text().replace("−", "-")
    quoted = re.findall(r"[+-]\d\.\d\d \[[+-]\d\.\d\d, [+-]\d\.\d\d\]", text)
    assert quoted, "the README quotes no verdict interval"
    assert not set(quoted) - computed, f"README intervals without data: {sorted(set(quoted) - computed)}"

"""Weights & Biases as an optional sink (--wandb): an offline run writes its files in RUN_DIR/wandb
beside metrics.csv; the W&B settings are refused without --wandb; a sweep's points share a group."""

from __future__ import annotations

import sys

import pytest
from test_resume import TINY_SETTINGS

from deepcrl import Config
from deepcrl.build import prepare
from deepcrl.errors import ConfigError
from deepcrl.logger import WANDB_ID_FILE, check_wandb

SETTINGS = {**TINY_SETTINGS, "total_env_steps": 1600, "num_evals": 2, "progress": False, "tensorboard": False}  # 20 epochs


def test_an_offline_wandb_run_writes_its_files_beside_metrics_csv(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the optional extra: pip install -e '.[wandb]'")
    from deepcrl.loop import train

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "")  # no account: offline by default
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc either
    run = tmp_path / "run"
    train(Config(**SETTINGS, run_dir=str(run), wandb=True, wandb_group="depth-study"))
    run_id = (run / "wandb" / WANDB_ID_FILE).read_text().strip()
    offline = list((run / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(offline) == 1, list((run / "wandb").iterdir())
    records = (offline[0] / f"run-{run_id}.wandb").read_bytes()
    for text in (b"eval/success", b"critic/loss", b"depth-study", b"run"):  # the metrics, the group, the name
        assert text in records, text
    assert (run / "metrics.csv").read_text().count("\n") == 3  # metrics.csv as always: a header and 2 rows


@pytest.mark.parametrize("field, value", [("wandb_group", "g"), ("wandb_mode", "offline"), ("wandb_project", "mine")])
def test_wandb_settings_without_wandb_are_one_line_errors(field, value):
    with pytest.raises(ConfigError, match=f"{field}=.*without --wandb"):
        prepare(Config(**SETTINGS, **{field: value}))


def test_a_bad_wandb_mode_and_a_missing_package_are_named(monkeypatch):
    with pytest.raises(ConfigError, match="wandb_mode='cloud' is not allowed; choose one of: online, offline, disabled"):
        prepare(Config(**SETTINGS, wandb=True, wandb_mode="cloud"))
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install -e \"\.\[wandb\]\""):
        check_wandb(Config(**SETTINGS, wandb=True))


def test_a_sweeps_points_share_a_wandb_group_and_are_named_by_point(tmp_path):
    from deepcrl.sweep import expand, spec_from_flags

    points = expand(spec_from_flags(["--wandb", "--seed", "0,1", "--depth", "4,8"]), tmp_path / "study")
    assert {p.config.wandb_group for p in points} == {"study"}
    assert [p.config.wandb_name for p in points] == [p.name for p in points]

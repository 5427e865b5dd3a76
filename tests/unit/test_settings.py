"""Settings: keyword arguments over GDC_SANDBOX_* variables over .env over defaults; bad values say which."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.errors import UsageError
from sandbox.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GDC_SANDBOX_HOME", "GDC_SANDBOX_S3_PORT", "GDC_SANDBOX_PREDICTION_AUTH", "GDC_SANDBOX_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_and_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings().home == tmp_path / ".sandbox" and Settings().s3_port == 9000
    (tmp_path / ".env").write_text("# local\nexport GDC_SANDBOX_S3_PORT=9100\nGDC_SANDBOX_PROJECT='team-a'\n")
    assert (Settings().s3_port, Settings().project) == (9100, "team-a")
    monkeypatch.setenv("GDC_SANDBOX_S3_PORT", "0")
    monkeypatch.setenv("gdc_sandbox_prediction_auth", "yes")
    settings = Settings(project="explicit")
    assert (settings.s3_port, settings.prediction_auth, settings.project) == (0, True, "explicit")
    assert Settings(home="rel").home == Path("rel")
    assert settings.model_dump()["s3_port"] == 0


@pytest.mark.parametrize(("name", "value"), [("GDC_SANDBOX_S3_PORT", "ninety"), ("GDC_SANDBOX_PREDICTION_AUTH", "maybe")])
def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as err:
        Settings()
    assert err.value.code == "settings.invalid" and name in err.value.message and name in err.value.hint


def test_probe_settings_default_to_the_kubelets_and_refuse_what_cannot_work(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (settings.probe_period, settings.probe_timeout) == (10.0, 1.0)  # periodSeconds, timeoutSeconds
    assert (settings.readiness_failure_threshold, settings.liveness_failure_threshold) == (3, 3)  # failureThreshold
    monkeypatch.setenv("GDC_SANDBOX_PROBE_PERIOD", "0")  # probes off
    assert Settings().probe_period == 0
    for name, value in (("PROBE_TIMEOUT", "0"), ("LIVENESS_FAILURE_THRESHOLD", "0"), ("PROBE_PERIOD", "-1")):
        monkeypatch.setenv(f"GDC_SANDBOX_{name}", value)
        with pytest.raises(UsageError) as err:
            Settings()
        assert err.value.code == "settings.invalid" and f"GDC_SANDBOX_{name}={value}" in err.value.message
        monkeypatch.delenv(f"GDC_SANDBOX_{name}")

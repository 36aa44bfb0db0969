from __future__ import annotations

from pathlib import Path

import pyspark
import pytest

from spark_flows.core.config import apply_overrides, load_settings, parse_key_values
from spark_flows.errors import ConfigError


def test_embedded_default_is_local_with_data_under_the_checkout() -> None:
    settings = load_settings()
    assert settings.master == "local[*]"
    assert settings.data_root == "data"
    line = ".".join(pyspark.__version__.split(".")[:2])
    assert settings.delta_package.startswith(f"io.delta:delta-spark_{line}_2.13:")
    assert settings.path("raw", "devices") == "data/raw/devices"


def test_conf_file_values_and_flag_overrides(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[spark]\nmaster = "local[1]"\n[spark.conf]\n"a.b" = 1\n[paths]\ndata_root = "/x"\n')
    settings = load_settings(str(conf), overrides={"data_root": "/y", "spark_conf": {"c.d": "2"}, "master": None})
    assert (settings.master, settings.data_root) == ("local[1]", "/y")
    assert dict(settings.spark_conf) == {"a.b": "1", "c.d": "2"}


def test_missing_conf_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read conf file .*nope\.toml"):
        load_settings(str(tmp_path / "nope.toml"))


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text("[spark\nmaster=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(str(conf))


def test_wrongly_typed_value_is_a_clear_error(tmp_path: Path) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text('[runner]\nlock_ttl_seconds = "soon"\n')
    with pytest.raises(ConfigError, match="invalid configuration"):
        load_settings(str(conf))


def test_unknown_override_and_bad_pair_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        apply_overrides(load_settings(), {"nope": 1})
    with pytest.raises(ConfigError, match="--spark-conf expects KEY=VALUE"):
        parse_key_values(["novalue"])

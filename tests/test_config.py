import pytest

from tracefactory.config import params_hash, parse_override
from tracefactory.errors import ConfigError
from tracefactory.params import apply_profile, load_params


def test_embedded_default_params_validate():
    params = load_params("params.yaml")
    assert params.seed == load_params("params.yaml").seed


def test_bad_value_names_key_value_and_what_is_allowed(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("ray:\n  num_cpus: 0\n")
    with pytest.raises(
        ConfigError, match=r"ray.num_cpus = 0: Input should be greater than or equal"
    ):
        load_params(path)


def test_unknown_key_is_an_error_not_ignored(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("ray:\n  adress: auto\n")
    with pytest.raises(ConfigError, match=r"ray.adress = 'auto': Extra inputs are not permitted"):
        load_params(path)


def test_overrides_are_parsed_as_yaml_values(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\n")
    params = load_params(path, ["seed=7", "ray.num_cpus=2"])
    assert (params.seed, params.ray.num_cpus) == (7, 2)
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("seed")


def test_missing_or_malformed_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_params(bad)


def test_profile_merges_into_params_and_is_validated_first(tmp_path):
    params_path = tmp_path / "params.yaml"
    params_path.write_text("seed: 1\nray:\n  num_cpus: 2\n")
    profile = tmp_path / "profile.yaml"
    profile.write_text("ray:\n  address: auto\n")
    params = apply_profile(params_path, profile)
    assert (params.ray.address, params.ray.num_cpus, params.seed) == ("auto", 2, 1)
    assert load_params(params_path).ray.address == "auto"
    profile.write_text("ray:\n  num_cpus: -1\n")
    with pytest.raises(ConfigError, match="ray.num_cpus"):
        apply_profile(params_path, profile)
    assert load_params(params_path).ray.num_cpus == 2  # a bad profile leaves params.yaml alone


def test_params_hash_changes_with_params_only(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\n")
    a, b = load_params(path), load_params(path, ["ray.num_cpus=3"])
    assert params_hash(a.ray) == params_hash(load_params(path).ray)
    assert params_hash(a.ray) != params_hash(b.ray)

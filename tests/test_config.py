import shutil
import subprocess
import typing

import pytest
import yaml
from locations import REPO, command_env
from pydantic import BaseModel

from tracefactory.config import params_hash, parse_override
from tracefactory.errors import ConfigError
from tracefactory.params import Params, apply_profile, load_params
from tracefactory.toyworld.train_policy import TinyPolicyTrainConfig


def test_embedded_default_params_validate():
    params = load_params(REPO / "params.yaml")
    assert params.seed == load_params(REPO / "params.yaml").seed


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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rollin.sampling.temperature=.inf", r"rollin.sampling.temperature = inf: .*finite"),
        ("rollout.sampling.top_p=.nan", r"rollout.sampling.top_p = nan: .*finite"),
        ("evaluate.sampling.temperature=-1", r"evaluate.sampling.temperature = -1: .*greater"),
        ("rollin.policies=[]", r"rollin.policies = \[\]: List should have at least 1 item"),
        ("train.batch_size=true", r"train.batch_size = True: .*a number is required"),
        ("rollin.sampling.top_p=true", r"rollin.sampling.top_p = True: .*a number is required"),
        ("ray.num_cpus=false", r"ray.num_cpus = False: .*a number is required"),
    ],
)
def test_bad_values_are_rejected_at_load(tmp_path, override, message):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\n")
    with pytest.raises(ConfigError, match=message):
        load_params(path, [override])


def test_numbers_written_as_yaml_text_still_load(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\n")
    params = load_params(path, ["train.max_lr=3e-4", "rollin.use_ray=false"])
    assert (params.train.max_lr, params.rollin.use_ray) == (3e-4, False)


PARAMS_WITH_COMMENTS = """\
# The embedded default.
seed: 1  # run seed

ray:
  address: null  # null: a local Ray
  num_cpus: 2
rollin:
  policies:
    - {name: tiny, model: "tracefactory:tiny", weight: 1.0}
  samples_per_problem: 4  # k roll-ins per problem
"""


def test_profile_apply_keeps_every_comment_and_the_layout(tmp_path):
    params_path = tmp_path / "params.yaml"
    params_path.write_text(PARAMS_WITH_COMMENTS)
    profile = tmp_path / "profile.yaml"
    profile.write_text("rollin:\n  samples_per_problem: 14  # the paper\nray:\n  num_cpus: 8\n")
    apply_profile(params_path, profile)
    text = params_path.read_text()
    assert text.splitlines()[0] == f"# {profile.as_posix()} applied by `tracefactory params apply`"
    expected = PARAMS_WITH_COMMENTS.replace("num_cpus: 2", "num_cpus: 8").replace(
        "samples_per_problem: 4  # k roll-ins per problem", "samples_per_problem: 14  # the paper"
    )
    assert text.split("\n", 1)[1] == expected
    apply_profile(params_path, profile)  # applying twice adds no second header
    assert params_path.read_text() == text
    assert load_params(params_path).rollin.samples_per_problem == 14


def _leaves(data: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in data.items():
        if isinstance(value, dict) and value:
            keys |= _leaves(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_params_yaml_lists_every_key_a_run_may_vary():
    listed = _leaves(yaml.safe_load((REPO / "params.yaml").read_text()))
    every = _leaves(load_params(REPO / "params.yaml").model_dump(mode="json"))
    wiring = {key for key in every if key.rsplit(".", 1)[-1].endswith(("_dir", "_dirs"))}
    unset_sections = {"rollout.policy.workers", "evaluate.policy.workers"}  # None: stage's own
    assert every - wiring - unset_sections - listed == set()


def test_dvc_exp_run_sets_any_listed_key_without_a_plus(tmp_path):
    env = command_env()
    shutil.copy("params.yaml", tmp_path / "params.yaml")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  noted:\n    cmd: python -c \"open('out.txt', 'w').write('x')\"\n"
        "    params: [train.max_steps, problems.dedupe.near, evaluate.search.block_tokens]\n"
        "    outs: [out.txt]\n"
    )

    def run(*args: str) -> None:
        subprocess.run(args, cwd=tmp_path, env=env, check=True, capture_output=True)

    run("git", "init", "-q")
    run("dvc", "init", "-q")
    run("git", "add", "-A")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    run("dvc", "exp", "run", "-S", "train.max_steps=50", "-S", "problems.dedupe.near=true",
        "-S", "evaluate.search.block_tokens=32")  # fmt: skip
    params = load_params(tmp_path / "params.yaml")
    assert (params.train.max_steps, params.problems.dedupe.near) == (50, True)
    assert params.evaluate.search.block_tokens == 32


def _sections(section: type[BaseModel]) -> set[type[BaseModel]]:
    """``section`` and every section model its fields hold, recursively."""
    found = {section}
    for field in section.model_fields.values():
        for inner in _models_in(field.annotation):
            found |= _sections(inner)
    return found


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def test_every_leaf_field_has_a_description_from_its_docstring():
    """`params show` prints these: a field added without its docstring fails here."""
    missing = [
        f"{section.__name__}.{name}"
        for section in _sections(Params) | _sections(TinyPolicyTrainConfig)
        for name, field in section.model_fields.items()
        if not field.description and not _models_in(field.annotation)
    ]
    assert missing == []
    assert Params.model_fields["seed"].description.startswith("run seed: every sampling seed")

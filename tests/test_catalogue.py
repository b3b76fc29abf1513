"""assignment.toml is parsed into one dataclass that holds the defaults and rejects what it does not know."""

import pytest

from autograder.grading import catalogue
from autograder.grading.catalogue import AssignmentConfig, ConfigError


def write(tmp_path, text):
    path = tmp_path / "assignment.toml"
    path.write_text(text)
    return path


def test_defaults_live_in_one_place(tmp_path):
    config = AssignmentConfig.from_toml(write(tmp_path, 'title = "T"\n'))
    assert config == AssignmentConfig(title="T")
    assert config.call_timeout == 10.0 and config.memory_mb == 2048 and config.processes == 512


def test_values_are_typed(tmp_path):
    config = AssignmentConfig.from_toml(write(tmp_path, 'call_timeout = 3\nrepeatable_calls = ["f", "g"]\n'))
    assert config.call_timeout == 3.0 and isinstance(config.call_timeout, float)
    assert config.repeatable_calls == ("f", "g")


def test_a_misspelled_key_names_the_file_the_key_and_the_known_keys(tmp_path):
    path = write(tmp_path, "call_timout = 5\n")
    with pytest.raises(ConfigError) as error:
        AssignmentConfig.from_toml(path)
    message = str(error.value)
    assert str(path) in message and "'call_timout'" in message and "call_timeout" in message and "memory_mb" in message


@pytest.mark.parametrize(
    "text",
    [
        'memory_mb = "4096"\n',
        "uses_tensorflow = 1\n",
        "memory_mb = true\n",
        "pure_reference = [1]\n",
        "call_timeout = [1]\n",
        "title = \n",
    ],
)
def test_a_wrong_value_is_an_error(tmp_path, text):
    with pytest.raises(ConfigError):
        AssignmentConfig.from_toml(write(tmp_path, text))


def test_every_shipped_assignment_parses():
    for name in catalogue.names():
        assert catalogue.load(name).config.title

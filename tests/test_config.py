import pytest

from automl.config import Config, load_config
from automl.errors import UserError


def test_presets_load_and_differ():
    quick = load_config("quick")
    paper = load_config("paper")
    assert isinstance(quick, Config)
    assert paper.ddpnas.pruning_step == 3 and paper.optim.lr == 0.1 and paper.data.batch_size == 256
    assert quick.data.n is not None and paper.data.n is None


def test_toml_file_and_overrides_layer_on_the_preset(tmp_path):
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("[optim]\nlr = 0.05\n[search]\nseed = 7\n")
    cfg = load_config("quick", cfg_file, {"search": {"seed": 9}})
    assert cfg.optim.lr == 0.05
    assert cfg.search.seed == 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[optim]\nlearning_rate = 0.1\n", "unknown key 'optim.learning_rate'"),
        ("[bogus]\nx = 1\n", "unknown key 'bogus'"),
        ("[optim]\nlr = -1\n", "bad value for 'optim.lr'"),
        ("[search]\nstrategy = 'evolution'\n", "bad value for 'search.strategy'"),
        ("[optim\nlr=1", "is not valid TOML"),
    ],
)
def test_bad_config_is_one_line_user_error(tmp_path, text, message):
    cfg_file = tmp_path / "bad.toml"
    cfg_file.write_text(text)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(")) as info:
        load_config("quick", cfg_file)
    assert "\n" not in str(info.value)


def test_missing_config_file_and_unknown_preset(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config("quick", tmp_path / "nope.toml")
    with pytest.raises(UserError, match="unknown preset"):
        load_config("huge")

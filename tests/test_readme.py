"""The README's quick start is the contract with a newcomer: keep it true and in step with CI."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", section, re.S)
    assert block, "README quick start has no code block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_quick_start_is_three_commands_setup_search_tests():
    setup, main_job, tests = quick_start_commands()
    assert "pip install" in setup and "torch==2.13.0" in setup
    assert main_job.endswith("automl search")
    assert "pytest" in tests


def test_ci_runs_the_readme_setup_and_test_commands():
    setup, _, tests = quick_start_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup.replace("pip install", "pip install -q") in ci or setup in ci
    assert tests in ci


def test_python_api_example_runs(tmp_path, monkeypatch):
    """The README's Python API section, run as a doctest in a scratch folder."""
    import doctest

    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    for block in blocks:  # each step fits in under 15 lines
        assert len(block.strip().splitlines()) < 15
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOML_HOME", str(tmp_path))
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), {}, "README", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 15

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line for line in readme if line.startswith("python3 -m venv")]
    assert len(commands) == 2 and commands[0].endswith("linecube demo")
    assert commands[1].endswith('pytest -m "not gpu"')
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci

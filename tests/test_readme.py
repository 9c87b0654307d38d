"""The README's example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs(capsys):
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert code, "README has no python example"
    # Run as written, except disk caching, which needs an importable module behind the kernels.
    namespace: dict = {"__name__": "readme_example"}
    for block in code:
        source = block.replace("@njit(cache=True, ", "@njit(")
        exec(compile(source, "<README.md>", "exec"), namespace)
    out = capsys.readouterr().out
    assert "mean:y.ols.x0" in out and "Indirect inference results" in out
    assert namespace["S"].shape == (10, len(namespace["sim"].names))
    result = namespace["result"]
    assert result.converged
    truth = namespace["truth"]
    for name, value in truth.items():
        assert abs(result.params[name] - value) < 4 * result.se()[name]
    post = namespace["post"]
    mean, sd = post.mean(), post.sd()
    for name, value in truth.items():
        assert abs(mean[name] - value) < 4 * sd[name]


def test_quick_start_has_exactly_two_commands():
    text = README.read_text()
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.S | re.M).group(1)
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    lines = [ln for b in blocks for ln in b.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 2
    assert "simfit run scenarios/quickstart.toml" in lines[0] and "pytest" in lines[1]

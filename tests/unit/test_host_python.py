"""The code that runs on audited hosts needs nothing newer than Python 3.8 (vermin's analysis of
the syntax, modules and functions it uses), while the controller runs 3.11."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOST_SIDE = [ROOT / "plugins" / "module_utils", ROOT / "plugins" / "modules"]
VERMIN = [str(pathlib.Path(sys.executable).parent / "vermin"), "--no-tips", "--violations", "--no-parse-comments"]


def test_host_side_code_runs_on_python_3_8():
    result = subprocess.run(
        [*VERMIN, "-t=3.8-", *map(str, HOST_SIDE)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Minimum required versions: 3.8" in result.stdout or "Minimum required versions: ~" in result.stdout


def test_the_check_sees_newer_syntax(tmp_path):
    """Control: the same check rejects code that needs 3.10 (a match statement)."""
    newer = tmp_path / "newer.py"
    newer.write_text("def f(x):\n    match x:\n        case 1:\n            return 1\n")
    result = subprocess.run([*VERMIN, "-t=3.8-", str(newer)], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode != 0
    assert "pattern matching" in result.stdout and "requires !2, 3.10" in result.stdout

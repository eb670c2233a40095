"""The release artifacts as auditwheel and a user's pip see them: the wheel's glibc ceiling
and tag, a source build on a machine without Rust, and a wheel forced onto the wrong Python.
Run with --via pip (the wheel is the one that run shares; one pass is enough)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "packaging"))
import wheelcheck  # noqa: E402  (packaging/ is not a package)


@pytest.fixture
def release_wheel(via, wheel):
    if via != "pip":
        pytest.skip("checks the release wheel: runs with --via pip (./run-tests runs both ways)")
    return wheel


def test_the_wheel_needs_no_glibc_above_its_tag(release_wheel, capsys):
    wheels = [release_wheel, *sorted((REPO / "dist").glob("*linux*.whl"))]
    for each in wheels:
        problems, audited, glibc = wheelcheck.check(each)
        summary = wheelcheck.summary(each, audited, glibc)
        with capsys.disabled():
            print(f"\n  {summary}")
        assert problems == [], summary
    assert wheelcheck.promised_tag(release_wheel) == "manylinux_2_17_x86_64"
    assert wheelcheck.highest_glibc(release_wheel) <= (2, 17)


def test_the_check_refuses_a_wheel_named_for_an_older_glibc(release_wheel, tmp_path):
    pretender = tmp_path / release_wheel.name.replace(
        "manylinux2014_x86_64.manylinux_2_17_x86_64", "manylinux_2_5_x86_64")
    shutil.copy(release_wheel, pretender)
    problems, _, _ = wheelcheck.check(pretender)
    assert any("above the tag manylinux_2_5_x86_64" in problem for problem in problems), problems
    assert any("auditwheel reports 'manylinux_2_17_x86_64'" in problem for problem in problems)


def test_a_source_build_without_rust_says_what_it_needs_in_one_line(release_wheel, tmp_path):
    subprocess.run([REPO / ".venv/bin/maturin", "sdist", "-o", tmp_path], check=True,
                   capture_output=True)
    sdist = next(tmp_path.glob("wsgihost-*.tar.gz"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    path = os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"])
    assert shutil.which("cargo", path=path) is None, "this test needs a PATH without cargo"
    built = subprocess.run([venv / "bin/pip", "install", "--disable-pip-version-check", sdist],
                           env={**os.environ, "PATH": path}, capture_output=True, text=True,
                           timeout=300)
    output = built.stdout + built.stderr
    assert built.returncode != 0
    said = [line.strip() for line in output.splitlines() if "wsgihost:" in line]
    assert said == ["wsgihost: no prebuilt wheel fits this platform, and building it from "
                    "source needs a Rust toolchain (cargo and rustc, e.g. from "
                    "https://rustup.rs) on PATH"], output
    assert "[1 lines of output]" in output, output
    assert "Compiling" not in output and "Rust not found, installing" not in output, output


def test_a_wheel_forced_onto_another_python_names_both_versions(release_wheel, tmp_path):
    other = sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
                   .glob("versions/3.12.*/bin/python3.12"))
    if not other:
        pytest.skip("needs pyenv's CPython 3.12, the Python the 3.11 wheel is forced onto")
    ours = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    forced = tmp_path / release_wheel.name.replace(f"{ours}-{ours}", "cp312-cp312")
    shutil.copy(release_wheel, forced)
    venv = tmp_path / "venv"
    subprocess.run([other[-1], "-m", "venv", venv], check=True)
    subprocess.run([venv / "bin/pip", "install", "-q", "--disable-pip-version-check", forced],
                   check=True)
    started = subprocess.run([venv / "bin/wsgihost", "--version"], capture_output=True,
                             text=True, timeout=60)
    built_for = f"CPython {sys.version_info[0]}.{sys.version_info[1]} (x86_64-linux-gnu)"
    assert started.returncode == 1
    assert started.stdout == ""
    [line] = started.stderr.splitlines()
    assert line.startswith(f"wsgihost: this installation was built for {built_for}, but this "
                           "is CPython 3.12 (x86_64-linux-gnu); reinstall it"), line
    imported = subprocess.run([venv / "bin/python", "-c", "import wsgihost; wsgihost.__version__"],
                              capture_output=True, text=True, timeout=60)
    assert imported.returncode == 1
    assert f"ImportError: wsgihost: this installation was built for {built_for}" in imported.stderr

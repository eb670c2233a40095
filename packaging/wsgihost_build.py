"""The build backend pip runs when it builds wsgihost from the sdist (no wheel fits the
platform): maturin's, after one check that the build can work at all. Without it a machine
with no Rust toolchain gets maturin's attempt to download one, or a page of cargo output;
with it, one line that says what to install."""
import os
import shlex
import shutil

import maturin
from maturin import build_sdist, get_requires_for_build_sdist  # noqa: F401 (the sdist hooks)


def missing_tools():
    """What a source build needs and this machine lacks: cargo builds the extension, and a C
    compiler builds aws-lc (the TLS crypto). pyo3 declares the Python C API itself, so the
    Python headers are not read."""
    missing = []
    if not shutil.which("cargo"):
        missing.append("a Rust toolchain (cargo and rustc, e.g. from https://rustup.rs)")
    compiler = (shlex.split(os.environ.get("CC", "")) or ["cc"])[0]
    if not shutil.which(compiler):
        missing.append(f"a C compiler ({compiler})")
    return missing


def require_tools():
    missing = missing_tools()
    if missing:
        raise SystemExit("wsgihost: no prebuilt wheel fits this platform, and building it from "
                         f"source needs {' and '.join(missing)} on PATH")


def get_requires_for_build_wheel(config_settings=None):
    require_tools()
    return maturin.get_requires_for_build_wheel(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    require_tools()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    require_tools()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    require_tools()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)

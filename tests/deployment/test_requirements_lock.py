"""requirements.txt is the lock the deploy installs: every package pinned (==) with hashes, made from
requirements.in, and every range of requirements.in met by its pin."""
from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]


def _logical_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.split(" #")[0].strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _lock() -> dict[str, tuple[str, list[str]]]:
    pins = {}
    for line in _logical_lines(REPO / "requirements.txt"):
        requirement, *options = line.split(" --hash=")
        name, _, version = requirement.strip().partition("==")
        assert version, f"not pinned: {line}"
        pins[canonicalize_name(name)] = (version, options)
    return pins


def test_every_locked_package_is_pinned_with_sha256_hashes():
    pins = _lock()
    assert len(pins) >= 10
    for name, (version, hashes) in pins.items():
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h.strip()) for h in hashes), name


def test_the_lock_meets_every_range_of_requirements_in():
    pins = _lock()
    ranges = [Requirement(line) for line in _logical_lines(REPO / "requirements.in")]
    assert {"azure-functions", "azure-servicebus", "msal", "requests", "pydantic"} <= {
        canonicalize_name(r.name) for r in ranges}
    for requirement in ranges:
        version, _ = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)


def test_development_requirements_take_the_ranges_not_the_lock():
    """pip refuses hashed and unhashed requirements in one run, so the dev file must not include the lock."""
    dev = _logical_lines(REPO / "requirements-dev.txt")
    assert "-r requirements.in" in dev and "-r requirements.txt" not in dev
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements.txt" in makefile

"""Every web resource the installer uploads exists in the repository and is a valid file of its declared type."""
from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from core import footprint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT, HTML = 3, 1                                 # webresourcetype
NODE = shutil.which("node")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(path: Path) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.tags


def test_every_listed_file_exists_with_a_unique_name_and_a_type_matching_its_extension():
    names = [r.name for r in footprint.WEB_RESOURCES]
    assert len(names) == len(set(names))
    for resource in footprint.WEB_RESOURCES:
        assert (ROOT / resource.path).is_file(), f"{resource.name}: {resource.path} is missing"
        assert resource.path == f"webresources/{resource.name}"
        assert resource.type == {".js": SCRIPT, ".html": HTML}[Path(resource.name).suffix], resource.name


def test_every_ribbon_script_and_page_in_the_tree_is_listed():
    on_disk = {str(p.relative_to(ROOT / "webresources")) for p in (ROOT / "webresources" / "w365_").rglob("*")
               if p.is_file()}
    assert on_disk == {r.name for r in footprint.WEB_RESOURCES}


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("name", [r.name for r in footprint.WEB_RESOURCES if r.type == SCRIPT])
def test_scripts_parse(name):
    result = subprocess.run([NODE, "--check", str(ROOT / "webresources" / name)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", [r.name for r in footprint.WEB_RESOURCES if r.type == HTML])
def test_pages_load_only_listed_scripts_and_never_name_card_inputs(name):
    path = ROOT / "webresources" / name
    tags = _tags(path)
    listed = {r.name for r in footprint.WEB_RESOURCES}
    sources = [a["src"] for t, a in tags if t == "script" and a.get("src")]
    assert sources
    for src in sources:
        # Relative paths resolve between web resources as between files (…/WebResources/w365_/pages/x.html).
        assert _normal(Path(name).parent, src) in listed, src
    ids = {a.get("id"): a for t, a in tags if t in ("input", "select")}
    for card_input in ("cardNumber", "expMonth", "expYear", "cardCode"):
        if card_input in ids:
            assert "name" not in ids[card_input], f"{card_input} must not be posted"
    labelled = {a.get("for") for t, a in tags if t == "label"}
    unlabelled = [i for i, a in ids.items() if a.get("type") != "hidden" and i not in labelled
                  and not _wrapped_checkbox(path, i)]
    assert not unlabelled


def _normal(folder: Path, src: str) -> str:
    parts: list[str] = []
    for part in (folder / src).as_posix().split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _wrapped_checkbox(path: Path, input_id: str) -> bool:
    return bool(re.search(rf'<label[^>]*>\s*<input id="{input_id}"', path.read_text(encoding="utf-8")))

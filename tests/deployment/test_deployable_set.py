"""What ships to Azure: the deployable set is the tracked files that .funcignore does not leave out, computed with
git's own gitignore rules (`git ls-files --ignored --exclude-from`), the same rules Core Tools and functions-action
apply when they pack the app."""
from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCIGNORE = ROOT / ".funcignore"
SHIPPED_TOP_LEVEL = {"function_app.py", "host.json", "requirements.txt", "app", "handlers", "core", "dataverse",
                     "gateway", "adapters"}
NEVER_SHIPPED = ("standins/", "tests/", "bench/", "installer/", "webresources/", "docs/", "infra/", ".github/",
                 ".ci/", "local/")
DEV_FILES = {"README.md", "Makefile", "pytest.ini", "requirements-dev.txt", "requirements.in",
             "local.settings.sample.json", "local.settings.json", ".gitignore", ".funcignore"}


def _git(*args: str, cwd: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def _tracked() -> list[str]:
    return _git("ls-files", "--cached")


def deployable(cwd: Path = ROOT, *, untracked: bool = False) -> set[str]:
    """Files git lists (tracked, or untracked in a scratch repo) minus those .funcignore leaves out."""
    which = "--others" if untracked else "--cached"
    listed = set(_git("ls-files", which, cwd=cwd))
    ignored = set(_git("ls-files", which, "--ignored", f"--exclude-from={FUNCIGNORE}", cwd=cwd))
    return listed - ignored


@pytest.fixture(scope="module")
def shipped() -> set[str]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return deployable()


def test_only_the_function_app_ships(shipped):
    assert {PurePosixPath(path).parts[0] for path in shipped} == SHIPPED_TOP_LEVEL


def test_no_standin_test_bench_installer_or_dev_file_ships(shipped):
    leaked = sorted(p for p in shipped if p.startswith(NEVER_SHIPPED) or p in DEV_FILES
                    or "/tests/" in p or p.endswith((".pyc", ".md")))
    assert leaked == []
    # and there really are such files in the repository to keep out
    assert any(p.startswith("standins/") for p in _tracked()) and any(p.startswith("tests/") for p in _tracked())


def test_every_file_of_the_shipped_packages_ships_code_and_pages_alike(shipped):
    """Templates and static files of the customer pages live beside the code that renders them; all of it ships."""
    tracked = _tracked()
    expected = {p for p in tracked if PurePosixPath(p).parts[0] in SHIPPED_TOP_LEVEL}
    assert expected - shipped == set()
    page_assets = {p for p in tracked if p.startswith("handlers/") and ({"templates", "static"}
                                                                       & set(PurePosixPath(p).parts))}
    assert page_assets <= shipped
    assert "function_app.py" in shipped and "host.json" in shipped and "requirements.txt" in shipped


def test_page_templates_and_static_files_added_later_would_ship_and_caches_would_not(tmp_path):
    """The rules themselves, on files that do not exist yet: a new template or stylesheet under handlers/ ships,
    a bytecode cache or a new top-level dev folder does not."""
    files = ["handlers/orders/templates/approval.html", "handlers/customer_pages/static/page.css",
             "handlers/customer_pages/static/js/form.js", "core/__pycache__/settings.cpython-311.pyc",
             "function_app.py", "notes/todo.txt", "scratch.py", "standins/queue.py", "tests/unit/test_x.py"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert deployable(tmp_path, untracked=True) == {
        "handlers/orders/templates/approval.html", "handlers/customer_pages/static/page.css",
        "handlers/customer_pages/static/js/form.js", "function_app.py"}

"""The deploy workflow parses, signs in to Azure by OIDC federation with no stored secret, deploys the tested ARM
template and publishes with a remote build."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "deploy.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _runs(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for step in _steps(workflow))


def test_it_parses_as_a_workflow(workflow):
    triggers = workflow.get("on", workflow.get(True))        # YAML 1.1 reads a bare `on` as true
    assert "workflow_dispatch" in triggers
    assert all("runs-on" in job and job["steps"] for job in workflow["jobs"].values())


def test_oidc_federation_and_no_stored_secret(workflow):
    assert workflow["permissions"]["id-token"] == "write"
    [login] = [s for s in _steps(workflow) if s.get("uses", "").startswith("azure/login@")]
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}     # no `creds` JSON
    for key, value in login["with"].items():
        assert re.fullmatch(r"\$\{\{ vars\.AZURE_[A-Z_]+ \}\}", value), key
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "secrets." not in text and "creds:" not in text and "publish-profile" not in text


def test_deploys_the_template_then_publishes_with_a_remote_build(workflow):
    runs = _runs(workflow)
    assert re.search(r"az deployment group create[^\n]*\\\n(.*\\\n)*\s*--template-file infra/main\.json", runs)
    assert (Path(WORKFLOW).parents[2] / "infra" / "main.json").exists()
    assert re.search(r'func azure functionapp publish "[^"]+" --python --build remote', runs)
    names = [s.get("name", s.get("uses", "")) for s in _steps(workflow)]
    assert names.index("Infrastructure") < next(i for i, n in enumerate(names) if n.startswith("Publish"))


def test_every_parameter_without_a_default_is_passed(workflow):
    import json

    template = json.loads((WORKFLOW.parents[2] / "infra" / "main.json").read_text())
    required = {n for n, p in template["parameters"].items() if "defaultValue" not in p}
    passed = set(re.findall(r"(\w+)=\"\$\{\{", _runs(workflow)))
    assert required and required <= passed

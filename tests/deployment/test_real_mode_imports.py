"""The function app in real mode imports nothing of standins/: in a fresh interpreter with no W365_MODE, importing
function_app, indexing its functions (what the Functions host does at start) and answering the health probe leave no
standins module loaded."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import function_app
import azure.functions as func
functions = function_app.app.get_functions()
health = next(f for f in functions if f.get_function_name() == "health")
answer = health.get_user_function()(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
assert json.loads(answer.get_body())["mode"] == "real", answer.get_body()
print(json.dumps({"functions": sorted(f.get_function_name() for f in functions),
                  "modules": sorted(sys.modules)}))
"""


def _index_in_fresh_process(**env_overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "W365_MODE"}
    env.update(env_overrides)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_real_mode_import_and_index_load_no_standin_module():
    indexed = _index_in_fresh_process()
    assert "dataverse_webhook" in indexed["functions"] and "health" in indexed["functions"]
    standin_modules = [m for m in indexed["modules"] if m == "standins" or m.startswith("standins.")]
    assert standin_modules == []
    # nor the test-only libraries the stand-ins lean on
    assert not {"responses", "pytest", "hypothesis"} & set(indexed["modules"])


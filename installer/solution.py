"""The ISV path: export the product's solution from a development environment as a versioned managed zip, import it
into a customer's environment, then configure what belongs to that environment only.

    python -m installer export --managed [--out dist]     ExportSolution, after raising the solution's version
    python -m installer import dist/W365Payments_1_0_0_2_managed.zip
                                                          ImportSolutionAsync, the system job followed to its end
    python -m installer configure --webhook-url URL       endpoint, key, steps, variable values, configuration row

Request and response shapes: tests/fixtures/dataverse/solution_endpoints.json (Microsoft Learn: ExportSolution,
ImportSolutionAsync, asyncoperation polling: statecode 3 = completed, statuscode 30 = succeeded, 31 = failed).
A zip is written only after it was opened and checked: no environment variable current values, no service endpoint
URL with a function key, no endpoint authentication value, no webhook key.
"""
from __future__ import annotations

import base64
import io
import re
import time
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core import odata
from core.errors import W365Error
from core.ports import Dataverse

Out = Callable[[str], None]
COMPLETED, SUCCEEDED = 3, 30
pause = time.sleep                   # between polls of the import job (tests replace it)
_SECRET_SHAPES = (re.compile(rb"[?&]code=[^&\"'<\s]+"), re.compile(rb"<AuthValue>\s*[^<\s]"),
                  re.compile(rb"x-w365-webhook-key", re.I))


class SolutionError(W365Error):
    """An export or import that cannot go on; the message says why and what to do."""


def next_version(version: str | None) -> str:
    """1.0.0.7 -> 1.0.0.8 (the last part counts exports; missing parts are 0)."""
    parts = [int(p) for p in (version or "1.0.0.0").split(".") if p.strip().isdigit()][:4]
    parts += [0] * (4 - len(parts))
    parts[3] += 1
    return ".".join(str(p) for p in parts)


def package_problems(package: bytes, *, secrets: tuple[str, ...] = ()) -> list[str]:
    """What must never leave the development environment, found in the zip (empty: safe to hand out)."""
    problems = []
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        for name in archive.namelist():
            if name.endswith("environmentvariablevalues.json"):
                problems.append(f"{name}: an environment variable's current value is in the solution")
            content = archive.read(name)
            for shape in _SECRET_SHAPES:
                if shape.search(content):
                    problems.append(f"{name}: a service endpoint's key or authentication value")
                    break
            for secret in secrets:
                if secret and secret.encode() in content:
                    problems.append(f"{name}: the webhook key itself")
    return problems


def export(dv: Dataverse, *, solution: str, out_dir: Path, managed: bool = True, secrets: tuple[str, ...] = (),
           out: Out = print) -> Path:
    found = dv.query("solutions", select=("solutionid", "uniquename", "version", "ismanaged"),
                     filter=odata.eq("uniquename", solution))
    if not found:
        raise SolutionError(f"There is no solution {solution} here: install into this development environment first "
                            f"(python -m installer install).")
    row = found[0]
    if row.get("ismanaged"):
        raise SolutionError(f"{solution} is managed here: export from the development environment where it is "
                            f"unmanaged.")
    version = next_version(row.get("version"))
    dv.update("solutions", row["solutionid"], {"version": version})
    out(f"Version {row.get('version')} -> {version}; exporting {solution} ({'managed' if managed else 'unmanaged'})")
    answer = dv.execute("ExportSolution", {"SolutionName": solution, "Managed": managed})
    package = base64.b64decode(answer.get("ExportSolutionFile") or "")
    problems = package_problems(package, secrets=secrets)
    if problems:
        raise SolutionError("The exported solution carries what belongs to this environment only, so it was not "
                            "written:\n  " + "\n  ".join(problems) + "\nRemove those from the solution (make.powerapps"
                            ".com > Solutions > " + solution + ": an environment variable's 'Remove from this solution' "
                            "on its current value; the service endpoint and its steps) and export again; `configure` "
                            "creates them in each environment.")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{solution}_{version.replace('.', '_')}{'_managed' if managed else ''}.zip"
    path.write_bytes(package)
    out(f"Wrote {path} ({len(package)} bytes)")
    return path


@dataclass
class ImportResult:
    ok: bool
    status: int | None
    errors: list[str] = field(default_factory=list)


def job_failures(data: str | None) -> list[str]:
    """The error texts of an import job's log (importjob.data)."""
    if not data:
        return []
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return [data[:500]]
    return [r.get("errortext") or r.get("errorcode") or "failed" for r in root.iter("result")
            if r.get("result") == "failure"]


def import_(dv: Dataverse, package: bytes, *, poll_seconds: float = 5.0, timeout_seconds: float = 3600.0,
            sleep: Callable[[float], None] | None = None, out: Out = print) -> ImportResult:
    sleep = sleep or pause
    if not zipfile.is_zipfile(io.BytesIO(package)):
        raise SolutionError("That file is not a solution zip.")
    answer = dv.execute("ImportSolutionAsync", {"OverwriteUnmanagedCustomizations": False, "PublishWorkflows": True,
                                                "CustomizationFile": base64.b64encode(package).decode("ascii")})
    operation, job = answer.get("AsyncOperationId"), answer.get("ImportJobKey")
    if not operation:
        raise SolutionError("Dataverse did not start an import job (no AsyncOperationId).")
    out(f"Import started (system job {operation}); waiting for it to finish ...")
    waited = 0.0
    while True:
        state = dv.retrieve("asyncoperations", operation, select=("statecode", "statuscode", "message"))
        if state.get("statecode") == COMPLETED:
            break
        if waited >= timeout_seconds:
            raise SolutionError(f"The import job {operation} is still running after {int(waited)} s; look at it in "
                                f"the Power Platform admin center (Solutions > History).")
        out(f"  still importing (status {state.get('statuscode')}) ...")
        sleep(poll_seconds)
        waited += poll_seconds
    status = state.get("statuscode")
    if status == SUCCEEDED:
        out("Import succeeded. Now: python -m installer configure --webhook-url <function URL>")
        return ImportResult(True, status)
    errors = [state["message"]] if state.get("message") else []
    if job:
        log = dv.retrieve("importjobs", job, select=("data", "progress", "completedon"))
        errors += [e for e in job_failures(log.get("data")) if e not in errors]
    out("Import FAILED:" + "".join(f"\n  - {e}" for e in errors or ["(no message from Dataverse)"]))
    return ImportResult(False, status, errors)

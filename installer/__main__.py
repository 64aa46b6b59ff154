"""python -m installer install|uninstall|plan|export|import|configure [--dry-run] [--solution NAME] [--webhook-url URL]
[--yes] [--include-data] [--managed] [--out DIR] [ZIP]

install/plan/uninstall: the one-command path straight into an environment. export/import/configure: the ISV path
(export the managed solution from a development environment, import it into a customer's, configure it there).

Settings (CONTRACT §1) come from the environment, then from local.settings.json ("Values") in the current folder or
the repository root; the environment wins. DATAVERSE_URL + DATAVERSE_TENANT_ID/CLIENT_ID/CLIENT_SECRET reach the
environment, W365_WEBHOOK_KEY goes into the webhook's x-w365-webhook-key header, AUTHORIZENET_CLIENT_KEY/LOGIN_ID/
ENVIRONMENT into the Direct Entry dialog's environment variables. With W365_MODE=local it talks to the
dev host's stand-in instead.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Mapping

from core import footprint
from core.errors import W365Error
from core.settings import Settings
from installer import solution as solutions
from installer.run import DEFAULT_SOLUTION, ROOT, install, uninstall


def load_settings(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    values: dict[str, str] = {}
    for folder in dict.fromkeys([ROOT, cwd or Path.cwd()]):
        path = folder / "local.settings.json"
        if path.is_file():
            values.update({k: str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).get("Values", {}).items()
                           if v not in (None, "")})
    values.update({k: v for k, v in (os.environ if environ is None else environ).items() if v})
    return Settings(values)


def public_settings(settings: Settings) -> dict[str, str]:
    """The settings the environment variables take, and only those (never a key or secret); the environment's name
    is checked (sandbox or production) before it goes into Dataverse."""
    found = {name: settings.get(name) for name in footprint.PUBLIC_SETTINGS if settings.get(name) is not None}
    if "AUTHORIZENET_ENVIRONMENT" in found:
        found["AUTHORIZENET_ENVIRONMENT"] = settings.gateway_environment
    return found


def build_client(settings: Settings):
    # The app's own wiring (app.composition): the same client, auth and local-mode switch as the function app.
    from app.composition import build_services

    return build_services(settings).dataverse


def _confirm(plan) -> bool:
    print(plan.table())
    answer = input(f"Remove these {len(plan.changes)} components? Type 'yes' to go on: ")
    return answer.strip().lower() == "yes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m installer", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("install", "uninstall", "plan", "export", "import", "configure"))
    parser.add_argument("zip", nargs="?", help="import: the solution zip written by export")
    parser.add_argument("--managed", action="store_true", help="export: a managed solution (what customers get)")
    parser.add_argument("--out", default="dist", help="export: the folder the zip is written to")
    parser.add_argument("--dry-run", action="store_true", help="print the plan as a table, change nothing")
    parser.add_argument("--solution", default=DEFAULT_SOLUTION, help="unmanaged solution unique name")
    parser.add_argument("--webhook-url", help="https://<app>.azurewebsites.net/api/dataverse?code=<function key>")
    parser.add_argument("--yes", action="store_true", help="uninstall without asking")
    parser.add_argument("--include-data", action="store_true",
                        help="uninstall also removes the customer-data tables and our columns on native tables")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A 404 on a table not created yet is the normal answer here; the installer reports what matters itself.
    logging.getLogger("dataverse.client").setLevel(logging.ERROR)
    settings = load_settings()
    try:
        dv = build_client(settings)
        if args.command == "uninstall":
            result = uninstall(dv, solution=args.solution, include_data=args.include_data, dry_run=args.dry_run,
                               confirm=(lambda plan: True) if args.yes else _confirm)
        elif args.command == "export":
            solutions.export(dv, solution=args.solution, out_dir=Path(args.out), managed=args.managed,
                             secrets=tuple(filter(None, [settings.get("W365_WEBHOOK_KEY")])))
            return 0
        elif args.command == "import":
            if not args.zip:
                parser.error("import needs the solution zip: python -m installer import <zip>")
            return 0 if solutions.import_(dv, Path(args.zip).read_bytes()).ok else 1
        else:
            key = settings.get("W365_WEBHOOK_KEY")
            result = install(dv, solution=args.solution, webhook_url=args.webhook_url, webhook_key=key,
                             settings=public_settings(settings), dry_run=args.dry_run or args.command == "plan",
                             scope="configuration" if args.command == "configure" else "all")
    except W365Error as exc:                 # a missing setting, no token, Dataverse down while reading
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

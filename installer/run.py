"""Carry out a plan step by step, with progress, and a clear report when a step fails."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from core.errors import W365Error
from core.ports import Dataverse
from installer import inventory
from installer.plan import SOLUTION_HEADER, Action, Plan, Target, plan_install
from installer.uninstall import plan_uninstall

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOLUTION = "W365Payments"
Out = Callable[[str], None]


@dataclass
class RunResult:
    plan: Plan
    done: list[Action] = field(default_factory=list)
    failed: Action | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None

    @property
    def missing(self) -> list[Action]:
        return self.plan.changes[len(self.done):]

    def report(self) -> str:
        if self.ok:
            return "Done: " + (f"{len(self.done)} changes made." if self.done else "nothing to change.")
        counts: dict[str, int] = {}
        for a in self.done:
            counts[f"{a.change}d {a.component}"] = counts.get(f"{a.change}d {a.component}", 0) + 1
        lines = [f"FAILED at step {len(self.done) + 1} of {len(self.plan.changes)}: {_line(self.failed)}",
                 f"  error: {_describe(self.error)}",
                 "Already done (these exist now): " + (", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing"),
                 f"Not done yet ({len(self.missing)}):"]
        lines += [f"  - {_line(a)}" for a in self.missing]
        lines.append("Run the same command again to finish: it reads what exists and does only the rest.")
        return "\n".join(lines)


def _line(action: Action) -> str:
    return f"{action.change} {action.component} {action.name}"


def _describe(error: Exception | None) -> str:
    if error is None:
        return ""
    status = getattr(error, "status", None)
    return f"{type(error).__name__}: {error}" + (f" (HTTP {status})" if status else "")


def execute(plan: Plan, target: Target, out: Out = print) -> RunResult:
    result = RunResult(plan)
    steps = plan.changes
    for i, action in enumerate(steps, 1):
        out(f"[{i}/{len(steps)}] {_line(action)} ...")
        try:
            action.run(target)
        except (W365Error, LookupError) as exc:
            result.failed, result.error = action, exc
            out(f"[{i}/{len(steps)}] failed: {_describe(exc)}")
            break
        result.done.append(action)
    return result


def _target(dv: Dataverse, inv: inventory.Inventory, solution: str) -> Target:
    if not hasattr(dv, "with_headers"):
        raise TypeError("the installer needs a client with with_headers() (dataverse.client.DataverseClient)")
    target = Target(dv, dv.with_headers({SOLUTION_HEADER: solution}), solution)
    if inv.publisher:
        target.ids["publisher"] = inv.publisher["publisherid"]
    if inv.endpoint:
        target.ids["endpoint"] = inv.endpoint["serviceendpointid"]
    return target


def plan(dv: Dataverse, *, solution: str = DEFAULT_SOLUTION, webhook_url: str | None = None,
         webhook_key: str | None = None, root: Path = ROOT, settings: Mapping[str, str] | None = None) -> Plan:
    return plan_install(inventory.read(dv, solution), solution=solution, webhook_url=webhook_url,
                        webhook_key=webhook_key, root=root, settings=settings)


def install(dv: Dataverse, *, solution: str = DEFAULT_SOLUTION, webhook_url: str | None = None,
            webhook_key: str | None = None, root: Path = ROOT, settings: Mapping[str, str] | None = None,
            dry_run: bool = False, out: Out = print, scope: str = "all") -> RunResult:
    """Read what exists, plan what is missing or different, and (unless dry_run) do it. `settings` (app settings by
    name) give the environment variables' values. scope="configuration" is `configure` (after a managed import):
    only the endpoint, its steps, the variables' values and the configuration row."""
    out(f"Reading the environment (solution {solution}) ...")
    inv = inventory.read(dv, solution)
    the_plan = plan_install(inv, solution=solution, webhook_url=webhook_url, webhook_key=webhook_key, root=root,
                            settings=settings, scope=scope)
    return _carry_out(the_plan, dv, inv, solution, dry_run, out)


def uninstall(dv: Dataverse, *, solution: str = DEFAULT_SOLUTION, include_data: bool = False, dry_run: bool = False,
              confirm: Callable[[Plan], bool] = lambda plan: True, out: Out = print) -> RunResult:
    out(f"Reading the environment (solution {solution}) ...")
    inv = inventory.read(dv, solution)
    the_plan = plan_uninstall(inv, include_data=include_data)
    if not dry_run and the_plan.changes and not confirm(the_plan):
        out("Nothing removed.")
        return RunResult(the_plan, failed=None)
    return _carry_out(the_plan, dv, inv, solution, dry_run, out)


def _carry_out(the_plan: Plan, dv: Dataverse, inv: inventory.Inventory, solution: str, dry_run: bool,
               out: Out) -> RunResult:
    for warning in the_plan.warnings:
        out(f"note: {warning}")
    if dry_run or not the_plan.changes:
        out(the_plan.table())
        return RunResult(the_plan)
    result = execute(the_plan, _target(dv, inv, solution), out)
    for action in the_plan.drift:
        out(f"drift (not changed): {action.component} {action.name}: {action.detail}")
    out(result.report())
    return result

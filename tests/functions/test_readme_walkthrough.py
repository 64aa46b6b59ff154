"""README's "Add a card, sync, charge part, charge the rest, refund", run as written against a dev host this test
starts on a free port (its own local/ directory): every command of the code block, in order, with the ids it says
where to find."""
from __future__ import annotations

import json
import re
import shlex
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.devhost_process import DevHostProcess

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### Add a card, sync, charge part, charge the rest, refund"


def walkthrough() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(HEADING):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


@pytest.fixture
def host(tmp_path):
    running = DevHostProcess(tmp_path / "local").start()
    yield running
    running.stop()


def _json_rows(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_the_readme_walkthrough_runs_as_written(host):
    ids: dict[str, str] = {}
    outputs = []
    for line in walkthrough():
        command = line.split("  #")[0]
        missing = [name for name in re.findall(r"<([a-z ]+)>", command) if name not in ids]
        assert not missing, f"the README does not say where {missing} comes from before: {line}"
        for name, value in ids.items():
            command = command.replace(f"<{name}>", value)
        argv = shlex.split(command)
        assert argv[0] == ".venv/bin/python", line
        result = host.run(sys.executable, *argv[1:])
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        outputs.append(result.stdout)
        if " demo" in command:
            listed = [row.split() for row in result.stdout.splitlines() if row.strip()]
            ids["account id"] = next(r[1] for r in listed if r[0] == "account")
            ids["invoice id"] = next(r[1] for r in listed if r[0] == "invoice" and "INV-1001" in r)
        elif " add-card " in command:
            ids["profile id"] = re.search(r"payment profile ([0-9a-f-]{36})", result.stdout).group(1)
        elif " send " in command:
            assert "w365_operation: Succeeded" in result.stdout, f"{line}\n{result.stdout}"
        elif "show w365_paymenttransaction" in command:
            charges = [r for r in _json_rows(result.stdout) if r["w365_name"].startswith("Charge")]
            assert [Decimal(str(r["w365_amount"])) for r in charges] == [Decimal("40.00"), Decimal("80.00")]
            ids["transaction id"] = charges[1]["w365_paymenttransactionid"]
    invoice = next(r for r in _json_rows(outputs[-1]) if "INV-1001" in r["name"])
    assert (Decimal(str(invoice["w365_amountpaid"])), Decimal(str(invoice["w365_balance"]))) == (
        Decimal("40.00"), Decimal("80.00"))


def test_add_card_takes_only_sandbox_test_cards_and_a_local_host(host):
    account = next(line.split()[1] for line in host.devhost("demo").stdout.splitlines() if line.startswith("account"))
    refused = host.devhost("add-card", account, "--card", "4242424242424242")
    assert refused.returncode != 0 and "sandbox test cards" in refused.stderr
    assert "w365_AddPaymentProfile" not in refused.stdout


def test_add_card_through_a_profile_request_page(host):
    account = next(line.split()[1] for line in host.devhost("demo").stdout.splitlines() if line.startswith("account"))
    added = host.devhost("add-card", account, "--via", "request", "--card", "5424000000000015")
    assert added.returncode == 0, added.stdout + added.stderr
    assert "Profile Request page: the card is saved" in added.stdout
    profile_id = re.search(r"payment profile ([0-9a-f-]{36})", added.stdout).group(1)
    rows = _json_rows(host.devhost("show", "w365_paymentprofile", "--select",
                                   "w365_paymentprofileid,w365_source").stdout)
    assert [r["w365_paymentprofileid"] for r in rows] == [profile_id]

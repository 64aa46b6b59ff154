"""Rights (CONTRACT §3, issue 12 items 1 and 2): README's "Rights: who may do what" is core/permissions.py RIGHTS,
every message and event has its rights declared, a person who lacks any one of them is refused before anything is
written or sent to the gateway, and administrators are recognised by role ids, directly or through a team."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import responses

from app.capabilities import registry
from app.composition import set_services
from bench import round_trips
from core import footprint, permissions
from standins.dataverse import security
from tests.conftest import GATEWAY_URL, build_world

README = Path(__file__).resolve().parents[2] / "README.md"
SCENARIOS = {
    "w365_ChargeInvoice": round_trips.scenario_charge,
    "w365_RefundTransaction": round_trips.scenario_refund,
    "w365_SubmitOrderPayment": round_trips.scenario_order_card_on_file,
    "w365_SendOrderForApproval": round_trips.scenario_send_for_approval,
    "w365_ConvertOrderToDraft": round_trips.scenario_convert_to_draft,
    "w365_AddPaymentProfile": round_trips.scenario_direct_entry,
    "w365_SyncPaymentProfile": round_trips.scenario_sync,
    "w365_SyncPaymentProfiles": round_trips.scenario_sync_all,
    "w365_SetDefaultPaymentProfile": round_trips.scenario_set_default,
    "w365_UpdatePaymentProfile": round_trips.scenario_update,
    "w365_DeactivatePaymentProfile": round_trips.scenario_deactivate,
}
ACCESS_NAMES = {v: k for k, v in security.ACCESS_RIGHTS.items()}       # "WriteAccess" -> "write"


def readme_rows() -> list[tuple[str, ...]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Rights: who may do what", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| message or event") or set(line) <= set("|- "):
            continue
        rows.append(tuple(cell.strip().strip("`") for cell in line.strip("|").split("|")))
    return rows


def test_the_readme_table_is_the_code_the_handlers_ask():
    assert readme_rows() == [tuple(row) for row in permissions.rights_rows()]


def test_every_message_and_event_declares_its_rights():
    ours = [s for s in registry().steps() if not s.message.startswith("w365_Test") and s.table != "w365_testtable"]
    for step in ours:
        assert permissions.rights_for(step.message, step.table), step
    assert {a.unique_name for a in footprint.CUSTOM_APIS} <= set(permissions.RIGHTS), "a Custom API without its rights"


DENIALS = [(message, right) for message, rights in permissions.RIGHTS.items() if message in SCENARIOS
           for right in rights if right.how in (permissions.EXPLICIT, permissions.AS_PERSON)]


@pytest.mark.parametrize("message,right", DENIALS,
                         ids=[f"{m}-{r.table}-{'+'.join(r.rights)}-{r.record}" for m, r in DENIALS])
def test_a_person_without_the_right_is_refused_before_anything_happens(message, right, monkeypatch):
    everything = {(access, t.logical_name) for access in security.ACCESS for t in footprint.TABLES}
    denied = {(ACCESS_NAMES[r], right.table) for r in right.rights}
    monkeypatch.setitem(security.ROLE_PRIVILEGES, "Denied", everything - denied)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        world = build_world(rsps)
        set_services(world.services)
        try:
            world.standin.add_role("Denied")
            user = world.standin.add_user("Dana Denied", roles=("Denied",))
            action = SCENARIOS[message](world)
            world.queue.drain()
            before = _state(world)
            calls = len(rsps.calls)
            reply = action(user=user)
            world.queue.drain()
            gateway_calls = [c for c in list(rsps.calls)[calls:] if c.request.url.startswith(GATEWAY_URL)]
        finally:
            set_services(None)
    assert reply.status == 200 and reply.body["status"] == "failed", reply.body
    assert re.search(r"permission|privileges", reply.message), reply.message
    assert gateway_calls == []
    assert _state(world) == before


def _state(world) -> dict:
    """Every row but the operation rows (the refusal is recorded there), and the emails sent."""
    return {t.logical_name: sorted(map(repr, world.standin.rows(t.logical_name))) for t in footprint.TABLES
            if t.logical_name != "w365_operation"} | {"outbox": world.standin.sent_emails()}


# --- administrators (CONTRACT §4: by role id, directly or through a team) ------------------------------------------

def _send_for_approval_as(world, user):
    return world.send("w365_SendOrderForApproval", "salesorder", world.ids["order"], user=user,
                      ContactId=world.ids["contact"], EmailSubject="Your order", EmailBody="Approve: {Approval Link}")


def test_a_billing_manager_through_a_team_is_an_administrator(world):
    user = world.standin.add_user("Terry Team", roles=("Salesperson",))
    world.standin.add_team("Billing", roles=("W365 Billing Manager",), members=(user,))
    reply = _send_for_approval_as(world, user)
    assert reply.body["status"] == "succeeded", reply.body


def test_a_copy_of_the_billing_manager_role_in_another_business_unit_counts(world):
    copy = world.standin.add_role("W365 Billing Manager (Europe)",
                                  parent_root_role=permissions.BILLING_MANAGER_ROLE_ID)
    user = world.standin.add_user("Bea Branch", roles=("Salesperson",))
    world.standin.grant_role(user, copy)
    assert _send_for_approval_as(world, user).body["status"] == "succeeded"


def test_a_role_merely_named_like_an_administrator_role_does_not_count(world, monkeypatch):
    monkeypatch.setitem(security.ROLE_PRIVILEGES, "Impostor", security.ROLE_PRIVILEGES["Salesperson"])
    impostor = world.standin.add_role("W365 Billing Manager")          # someone's own role, given the name
    team_impostor = world.standin.add_role("System Administrator")
    user = world.standin.add_user("Ivan Impostor", roles=("Salesperson",))
    world.standin.grant_role(user, impostor)
    world.standin.add_team("Admins in name", members=(user,))
    world.standin.store.link("teamroles_association",
                             next(iter(world.standin.store.linked("teammembership_association", user))),
                             team_impostor)
    reply = _send_for_approval_as(world, user)
    assert reply.body["status"] == "failed" and "Only administrators" in reply.message
    assert world.standin.sent_emails() == []

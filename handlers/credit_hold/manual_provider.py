"""The Manual provider: a person provisions. It files a Dataverse task for the subscription's owner and leaves the
subscription Provisioning; whoever completes the work sets it to Provisioned.

The task's id is derived from the delivery key (handlers/credit_hold/rules.py, `delivery_key`), so the call is
idempotent: a second delivery of the same provisioning creates the same id, Dataverse refuses it as a duplicate key
(412, 0x80040237 "A record with matching key values already exists."), and the task already filed stands."""
from __future__ import annotations

import uuid

from core.errors import DuplicateRecord
from core.ports import Record
from core.services import Services
from handlers.credit_hold.rules import ProvisioningResult, delivery_key

# Fixed forever: changing it would give a redelivery a different task id than the delivery it repeats.
TASK_ID_NAMESPACE = uuid.UUID("4f1c2b7e-6d0a-5e9b-9c3f-2a8d7e61b5c4")


def task_id(subscription: Record) -> str:
    return str(uuid.uuid5(TASK_ID_NAMESPACE, delivery_key(subscription)))


class ManualProvider:
    def provision(self, services: Services, subscription: Record, provider: Record,
                  attempt: int) -> ProvisioningResult:
        subscription_id = subscription["w365_subscriptionid"]
        name = subscription.get("w365_name") or subscription_id
        task_key = task_id(subscription)
        task = {
            "activityid": task_key,
            "subject": f"Provision subscription {name}"[:200],
            "description": (f"Provision subscription {name} (id {subscription_id}) through {provider.get('w365_name')}"
                            f", quantity {subscription.get('w365_quantity')}, then set its provisioning status to "
                            f"Provisioned.")[:2000],
        }
        if subscription.get("_w365_accountid_value"):
            task["regardingobjectid_account@odata.bind"] = f"/accounts({subscription['_w365_accountid_value']})"
        owner = subscription.get("_ownerid_value")
        if owner:
            task["ownerid@odata.bind"] = f"/systemusers({owner})"
        try:
            services.dataverse.create("tasks", task)
        except DuplicateRecord:
            pass                # filed by an earlier delivery of this provisioning: the same task, not a second one
        return ProvisioningResult.in_progress(
            f"Waiting for manual provisioning: task {task_key} was assigned to the subscription's owner.")

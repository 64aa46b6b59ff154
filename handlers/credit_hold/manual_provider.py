"""The Manual provider: a person provisions. It files a Dataverse task for the subscription's owner and leaves the
subscription Provisioning; whoever completes the work sets it to Provisioned."""
from __future__ import annotations

from core.ports import Record
from core.services import Services
from handlers.credit_hold.rules import ProvisioningResult


class ManualProvider:
    def provision(self, services: Services, subscription: Record, provider: Record,
                  attempt: int) -> ProvisioningResult:
        subscription_id = subscription["w365_subscriptionid"]
        name = subscription.get("w365_name") or subscription_id
        task = {
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
        task_id = services.dataverse.create("tasks", task)
        return ProvisioningResult.in_progress(
            f"Waiting for manual provisioning: task {task_id} was assigned to the subscription's owner.")

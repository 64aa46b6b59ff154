"""Credit hold and provisioning (CONTRACT §3-§4, issue 6): block subscriptions of held accounts, release them when the
hold is lifted or the switch is turned off, and provision through the provider registered for the w365_provider type.

State of a subscription (w365_provisioningstatus):
    Pending/empty --held--> Blocked By Credit Hold --lift/switch off--> provider --> Provisioned | Failed | Provisioning
    Pending/empty --not held--> provider --> ...
    Provisioning: the provider accepted and finishes later (Manual: a person), or its retry is queued (Webhook);
    a retry --> Provisioned | Failed | Provisioning (the next retry).
Each subscription is provisioned by one queued message: one read, the provider's call, one write of the outcome.
There is no claim before the call: the call itself is idempotent, so two deliveries of the same message (or of two
messages for one subscription) that both run before either has written its outcome provision once. The Manual
provider files its task under an id derived from the subscription and the version both deliveries read
(`delivery_key`): Dataverse refuses the second create as a duplicate key, and the task already filed stands.
The Webhook provider sends the same `X-W365-Delivery` on every delivery and attempt, so its endpoint drops repeats.
The outcome is written with If-Match on the version read: a delivery that finds the subscription already
Provisioned or Failed by another (or by a person) leaves it so. A delivery that finds it Provisioning/Provisioned/
Failed at its read does nothing; a retry (attempt > 1) goes on only while it is Provisioning. The hold is re-read
when the message is processed, not trusted from the event: a hold set again before the message runs keeps the
subscription blocked.

Providers sit behind the `Provider` port, found in `services.providers` by their w365_type label; adding a type means
registering one more provider (app/composition.py, provisioning_providers), never touching these rules.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from core import footprint, odata
from core.errors import ConcurrencyConflict, ConfigurationError, RecordNotFound
from core.ports import Read, Record
from core.services import Services
from core.steps import Outcome
from core.configuration import money_switches, money_switches_read as configuration_read

log = logging.getLogger(__name__)

SUBSCRIPTIONS = "w365_subscriptions"
STATUS = "w365_provisioningstatus"
RESULT = "w365_provisioningresult"
RESULT_MAX = 2000
PROVISION_WORK = "credit_hold.provision"
# Back-off before attempt 2, 3, ...; after the last one a transient failure becomes Failed.
RETRY_DELAYS = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=15), dt.timedelta(hours=1))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
_SUBSCRIPTION_SELECT = ("w365_subscriptionid", "w365_name", STATUS, RESULT, "_w365_accountid_value",
                        "_w365_salesorderid_value", "_w365_productid_value", "w365_quantity", "_w365_providerid_value",
                        "_ownerid_value")
_PROVIDER_EXPAND = "w365_providerid($select=w365_providerid,w365_name,w365_type,w365_endpointurl)"


def status(label: str) -> int:
    return footprint.choice("w365_subscription", STATUS, label)


# --- the provider port ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProvisioningResult:
    """A provider's answer. `retry` is a transient failure (5xx, timeout, refused): tried again on a back-off."""
    state: str                  # one of PROVISIONED, IN_PROGRESS, FAILED, RETRY
    message: str = ""

    PROVISIONED = "provisioned"
    IN_PROGRESS = "in_progress"  # accepted, someone or something finishes it later (Manual)
    FAILED = "failed"
    RETRY = "retry"

    @classmethod
    def provisioned(cls, message: str = "") -> "ProvisioningResult":
        return cls(cls.PROVISIONED, message)

    @classmethod
    def in_progress(cls, message: str = "") -> "ProvisioningResult":
        return cls(cls.IN_PROGRESS, message)

    @classmethod
    def failed(cls, message: str) -> "ProvisioningResult":
        return cls(cls.FAILED, message)

    @classmethod
    def retry(cls, message: str) -> "ProvisioningResult":
        return cls(cls.RETRY, message)


class Provider(Protocol):
    def provision(self, services: Services, subscription: Record, provider: Record,
                  attempt: int) -> ProvisioningResult:
        """Provision `subscription` (a w365_subscription record) through `provider` (its w365_provider record).
        Answer with a result; raise only for a failure of our own platform (then the message is redelivered)."""
        ...


# --- the switch and the hold -----------------------------------------------------------------------------------------

def credit_hold_enabled(services: Services) -> bool:
    return bool(money_switches(services).get("w365_enablecredithold"))


def _switch_on(switch_rows: list[Record]) -> bool:
    """The switch from the answer of `configuration_read()` in a caller's read $batch (fresh: it gates work)."""
    return bool((switch_rows[0] if switch_rows else {}).get("w365_enablecredithold"))


def _held(subscription: Record, switch_rows: list[Record]) -> bool:
    """Whether the hold applies now to a subscription read with _ACCOUNT_HOLD expanded: the switch is on and its
    account's creditonhold is Yes (both re-read, in the same read $batch)."""
    return _switch_on(switch_rows) and bool((subscription.get("w365_accountid") or {}).get("creditonhold"))


_ACCOUNT_HOLD = "w365_accountid($select=accountid,creditonhold)"


# --- blocking: a new subscription ------------------------------------------------------------------------------------

BLOCKED_NEW = "Blocked: the account is on credit hold. It is provisioned when the hold is lifted."


def provision_new_subscription(services: Services, subscription_id: str) -> Outcome:
    """Apply the credit-hold rules to a subscription just created: Blocked when its account is held, else queued for
    its provider. The Create event calls this. Safe to call twice."""
    # One read $batch: the subscription with its account's hold, and the switch.
    subscription, switch = services.dataverse.read([
        Read.retrieve(SUBSCRIPTIONS, subscription_id, select=_SUBSCRIPTION_SELECT, expand=_ACCOUNT_HOLD),
        configuration_read()])
    current = subscription.get(STATUS)
    if current not in (None, status("Pending")):
        return Outcome.succeeded(f"The subscription is already {_label(current)}; nothing to do.")
    if _held(subscription, switch):
        services.dataverse.update(SUBSCRIPTIONS, subscription_id, {STATUS: status("Blocked By Credit Hold"),
                                                                   RESULT: BLOCKED_NEW},
                                  etag=subscription.get("@odata.etag"))
        return Outcome.succeeded("The account is on credit hold: the subscription is blocked.", blocked=True)
    return queue_new_subscription(services, subscription_id, etag=subscription.get("@odata.etag"))


def held_columns() -> dict[str, Any]:
    """A subscription created while its account is held (code of ours that creates subscriptions has read the hold
    once for all of them, and writes them Blocked at once: the loop guard drops the Create events of our writes)."""
    return {STATUS: status("Blocked By Credit Hold"), RESULT: BLOCKED_NEW}


def queue_new_subscription(services: Services, subscription_id: str, *, etag: str | None = None) -> Outcome:
    """Queue a Pending subscription for its provider."""
    try:
        _queue(services, subscription_id, origin="new")
    except ConfigurationError as exc:
        # Real mode without its queue settings (CONTRACT §1): what created the subscription (a paid order) goes on;
        # the subscription says what is missing and is provisioned again once it is set.
        reason = f"{NOT_QUEUED}: {exc}"
        services.dataverse.update(SUBSCRIPTIONS, subscription_id, {
            STATUS: status("Failed"), RESULT: f"{reason} Set it, then provision the subscription again."[:RESULT_MAX]},
            etag=etag)
        return Outcome.succeeded(f"The subscription failed: {reason}", blocked=False, failed=reason)
    return Outcome.succeeded("The subscription is queued for provisioning.", blocked=False)


# --- provisioning again what waited for its configuration --------------------------------------------------------

# A subscription of a paid order is created Failed when provisioning is not configured (no active provider, no queue
# settings): the payment never waits on it. These results say so, and mark the rows the sweep provisions again.
NO_PROVIDER = ("No active provider exists to provision it: add an active w365_provider (Manual or Webhook), or set "
               "one on the subscription; it is then provisioned again within minutes.")
NOT_QUEUED = "Could not be queued for provisioning"
REPROVISION_SCHEDULE = "0 */5 * * * *"
REPROVISION_PAGE = 500


PROVIDERS = "w365_providers"
ACTIVE_PROVIDERS = dict(select=("w365_providerid", "w365_name", "w365_type"), filter="statecode eq 0",
                        orderby="w365_name asc")


def choose_provider(providers: list[Record]) -> Record | None:
    """Of the active providers (ACTIVE_PROVIDERS' answer): the first Manual one, else the first; None when none is
    active (a paid order is still completed, its subscriptions created Failed)."""
    if not providers:
        return None
    manual = footprint.choice("w365_provider", "w365_type", "Manual")
    return next((p for p in providers if p.get("w365_type") == manual), providers[0])


def default_provider(services: Services) -> Record | None:
    return choose_provider(services.dataverse.query(PROVIDERS, **ACTIVE_PROVIDERS))


def reprovision_waiting(services: Services) -> int:
    """The timer's sweep: subscriptions that failed only because provisioning was not configured are provisioned
    again once it is (a person adds a provider, or sets one on the subscription, or sets the queue's settings);
    nobody has to find and touch each one. Returns how many were handed to the credit-hold rules again."""
    rows = services.dataverse.query(
        SUBSCRIPTIONS, select=("w365_subscriptionid", "_w365_providerid_value", RESULT), top=REPROVISION_PAGE,
        filter=f"{STATUS} eq {status('Failed')} and ({odata.startswith(RESULT, NO_PROVIDER[:40])} or "
               f"{odata.startswith(RESULT, NOT_QUEUED)})")
    fallback: dict[str, Any] | None = None
    again = 0
    for row in rows:
        body: dict[str, Any] = {STATUS: status("Pending"), RESULT: "Provisioning again: what it waited for is set."}
        if not row.get("_w365_providerid_value"):
            fallback = fallback or default_provider(services)
            if fallback is None:
                return again              # no provider yet: every row without one keeps waiting
            body["w365_providerid@odata.bind"] = f"/w365_providers({fallback['w365_providerid']})"
        try:                              # If-Match: a person who changed the row meanwhile wins
            services.dataverse.update(SUBSCRIPTIONS, row["w365_subscriptionid"], body, etag=row.get("@odata.etag"))
        except ConcurrencyConflict:
            continue
        # Queued as Pending without reading the hold here: the message reads it (and the switch) fresh and blocks a
        # held account's subscription, so the sweep reads neither once per subscription.
        outcome = queue_new_subscription(services, row["w365_subscriptionid"])
        if outcome.data.get("failed"):
            return again                  # the queue still cannot be reached: the rest wait for the next sweep
        again += 1
    return again


# --- release ---------------------------------------------------------------------------------------------------------

def release_account(services: Services, account_id: str, *, lifted_by: str, lifted_at: dt.datetime,
                    event_id: str) -> Outcome:
    """The account's hold went from Yes to No: queue every subscription that was Blocked at `lifted_at`, one message
    each, and write a note on the account saying who lifted it and how many were released."""
    # One read $batch: the switch and the account's hold (both fresh: a hold set again keeps everything blocked), and
    # who lifted it (for the note).
    try:
        switch, account, users = services.dataverse.read([
            configuration_read(), Read.retrieve("accounts", account_id, select=("accountid", "creditonhold")),
            _user_read(lifted_by)])
    except RecordNotFound:                 # deleted since the change: its subscriptions are no one's to release
        return Outcome.succeeded("The account no longer exists; nothing was released.", released=0)
    if not _switch_on(switch):
        return Outcome.succeeded("Credit hold is switched off; the change of the account's hold is ignored.")
    if account.get("creditonhold"):
        return Outcome.succeeded("The account is on credit hold again; nothing was released.", released=0)
    blocked = services.dataverse.query(
        SUBSCRIPTIONS, select=("w365_subscriptionid", "_w365_accountid_value"),
        filter=f"_w365_accountid_value eq {account_id} and {STATUS} eq {status('Blocked By Credit Hold')} "
               f"and createdon le {_odata_time(lifted_at)}")
    count = _release(services, blocked, event_id)
    _note(services, account_id, "Credit hold lifted",
          f"Credit hold lifted by {_user_name(users, lifted_by)} on {_odata_time(lifted_at)}: "
          f"{count} blocked subscription(s) released for provisioning.")
    return Outcome.succeeded(f"{count} blocked subscription(s) released.", released=count)


def credit_hold_switched(services: Services, *, changed_by: str, event_id: str) -> Outcome:
    """The switch changed. Turned off: every subscription blocked by a credit hold is released (a note on each
    account says so). Turned on: nothing changes; only subscriptions created from now on are checked."""
    switch, users = services.dataverse.read([configuration_read(), _user_read(changed_by)])
    if _switch_on(switch):
        return Outcome.succeeded("Credit hold is on; nothing already provisioned changes.", released=0)
    blocked = services.dataverse.query(
        SUBSCRIPTIONS, select=("w365_subscriptionid", "_w365_accountid_value"),
        filter=f"{STATUS} eq {status('Blocked By Credit Hold')}")
    count = _release(services, blocked, event_id)
    who = _user_name(users, changed_by)
    for account_id, released in Counter(r["_w365_accountid_value"] for r in blocked
                                        if r.get("_w365_accountid_value")).items():
        _note(services, account_id, "Credit hold switched off",
              f"Credit hold was switched off by {who}: {released} blocked subscription(s) released for provisioning.")
    return Outcome.succeeded(f"Credit hold is off: {count} blocked subscription(s) released.", released=count)


def _release(services: Services, blocked: Iterable[Record], event_id: str) -> int:
    count = 0
    for row in blocked:
        _queue(services, row["w365_subscriptionid"], origin=event_id)
        count += 1
    return count


# --- provisioning (the queued work) ----------------------------------------------------------------------------------

def provision(services: Services, subscription_id: str, *, attempt: int = 1, origin: str = "") -> str:
    """One delivery of the provisioning message. Returns what happened (for logs and tests). Attempt 1 goes on from
    Pending or Blocked; a retry (attempt > 1) goes on only while the subscription is still Provisioning.
    Two Dataverse requests besides the provider's call: the read and the outcome."""
    # One read: the subscription, its provider and its account's hold, and the credit-hold switch (fresh: it gates
    # the work) in the same $batch.
    try:
        subscription, switch = services.dataverse.read([
            Read.retrieve(SUBSCRIPTIONS, subscription_id, select=_SUBSCRIPTION_SELECT,
                          expand=f"{_PROVIDER_EXPAND},{_ACCOUNT_HOLD}"),
            configuration_read()])
    except RecordNotFound:
        log.info("provisioning: subscription %s no longer exists", subscription_id)
        return "gone"
    current = subscription.get(STATUS)
    if attempt == 1:
        if current not in (None, status("Pending"), status("Blocked By Credit Hold")):
            return "skipped"
        if _held(subscription, switch):
            if current != status("Blocked By Credit Hold"):
                services.dataverse.update(SUBSCRIPTIONS, subscription_id, {
                    STATUS: status("Blocked By Credit Hold"),
                    RESULT: "Blocked: the account is on credit hold."}, etag=subscription.get("@odata.etag"))
            return "held"
    elif current != status("Provisioning"):
        return "skipped"
    # No claim before the call (it would be a third request): the providers' calls are idempotent per delivery_key,
    # so a second delivery that read the same version provisions nothing twice (module docstring).
    result = _call_provider(services, subscription, attempt)
    return _record(services, subscription, result, attempt, origin)


def delivery_key(subscription: Record) -> str:
    """What a provider makes its work idempotent on: the subscription and the version of it the delivery read.
    Two deliveries that read the same version (a redelivered message, two release messages of one subscription
    run side by side) are one provisioning and get the same key; the outcome then changes the version, so a
    subscription provisioned again later (Blocked again, released again) is a new one."""
    return f"{subscription['w365_subscriptionid']}@{subscription.get('@odata.etag') or ''}"


def _call_provider(services: Services, subscription: Record, attempt: int) -> ProvisioningResult:
    provider_row = subscription.get("w365_providerid")
    if not provider_row:
        return ProvisioningResult.failed("The subscription has no provider.")
    type_value = provider_row.get("w365_type")
    type_label = footprint.label("w365_provider", "w365_type", type_value) if type_value is not None else ""
    provider = services.providers.get(type_label)
    if provider is None:
        return ProvisioningResult.failed(f"No provider of type '{type_label or 'none'}' is registered.")
    try:
        return provider.provision(services, subscription, provider_row, attempt)
    except ConfigurationError as exc:       # names the setting, never its value
        return ProvisioningResult.failed(str(exc))


def _record(services: Services, subscription: Record, result: ProvisioningResult, attempt: int,
            origin: str) -> str:
    """The outcome in one PATCH, If-Match on the version read: Provisioned, Failed, or Provisioning (accepted and
    finished later, or a retry queued after it)."""
    subscription_id = subscription["w365_subscriptionid"]
    retry_delay: dt.timedelta | None = None
    if result.state == ProvisioningResult.RETRY:
        if attempt < MAX_ATTEMPTS:
            retry_delay = RETRY_DELAYS[attempt - 1]
            result = ProvisioningResult(ProvisioningResult.RETRY, f"Attempt {attempt} failed: {result.message} "
                                                                  f"Retrying in {_minutes(retry_delay)}.")
        else:
            result = ProvisioningResult.failed(f"Gave up after {attempt} attempts: {result.message}")
    final = {ProvisioningResult.PROVISIONED: "Provisioned", ProvisioningResult.FAILED: "Failed"}
    body = {STATUS: status(final.get(result.state, "Provisioning")), RESULT: result.message[:RESULT_MAX]}
    if retry_delay is not None:
        # Queued before the write: the retry runs minutes later and goes on only if the subscription is Provisioning
        # then, so a delivery stopped between the two leaves no subscription Provisioning without its retry (its
        # redelivery queues the same message id again, which the broker drops).
        _queue(services, subscription_id, origin=origin, attempt=attempt + 1, delay=retry_delay)
    try:
        services.dataverse.update(SUBSCRIPTIONS, subscription_id, body, etag=subscription.get("@odata.etag"))
    except ConcurrencyConflict:
        # Changed since the read. Another delivery of the same provisioning, or a person, that finished it
        # (Provisioned, Failed) wins: the provider's call was idempotent, nothing is lost. Otherwise (a hold written
        # meanwhile, an edit, a retry noted) the provider has been called, and this outcome is the truth.
        now = services.dataverse.retrieve(SUBSCRIPTIONS, subscription_id, select=(STATUS,))
        if now.get(STATUS) in (status("Provisioned"), status("Failed")):
            log.info("provisioning: subscription %s was already recorded; this delivery's outcome is dropped",
                     subscription_id)
            return "duplicate"
        services.dataverse.update(SUBSCRIPTIONS, subscription_id, body, etag=now.get("@odata.etag"))
    return result.state


def _queue(services: Services, subscription_id: str, *, origin: str, attempt: int = 1,
           delay: dt.timedelta | None = None) -> None:
    # Deterministic id: a redelivered event re-sends the same messages and the broker drops them; another lift (a
    # different origin) gets new ones.
    services.queue.send(PROVISION_WORK, {"subscription_id": subscription_id, "attempt": attempt, "origin": origin},
                        message_id=f"{PROVISION_WORK}:{subscription_id}:{origin}:{attempt}",
                        session_id=subscription_id, delay=delay)


# --- small helpers ---------------------------------------------------------------------------------------------------

def _label(value: int) -> str:
    return footprint.label("w365_subscription", STATUS, value)


def _user_read(user_id: str) -> Read:
    """Who changed the hold or the switch, for the note, as a read of the caller's $batch: a query, so that a user
    who no longer exists is no answer rather than an error of the whole batch."""
    try:
        user = uuid.UUID(user_id)
    except (TypeError, ValueError):                   # no user in the context: no row will match
        user = uuid.UUID(int=0)
    return Read.query("systemusers", select=("systemuserid", "fullname"), filter=odata.eq("systemuserid", user))


def _user_name(users: list[Record], user_id: str) -> str:
    """The name for a note, from the answer of `_user_read`."""
    if not user_id:
        return "an unknown user"
    return next((u.get("fullname") for u in users if u.get("fullname")), None) or f"user {user_id}"


def _note(services: Services, account_id: str, subject: str, text: str) -> None:
    services.dataverse.create("annotations", {"subject": subject, "notetext": text,
                                              "objectid_account@odata.bind": f"/accounts({account_id})"})


def _odata_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _minutes(delay: dt.timedelta) -> str:
    minutes = int(delay.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"

"""infra/main.json (ARM) and infra/main.bicep: every CONTRACT §1 setting, secrets only as Key Vault references, the
work queue's delivery guarantees, least-privilege roles scoped where they belong, identity instead of connection
strings. No Azure and no Bicep compiler here, so the template is checked as data (ARM JSON) and as text (Bicep)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARM = REPO / "infra" / "main.json"
BICEP = REPO / "infra" / "main.bicep"
CONTRACT = REPO.parent / "shared" / "design" / "CONTRACT.md"

# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
SERVICE_BUS_DATA_SENDER = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
SERVICE_BUS_DATA_RECEIVER = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
KEY_VAULT_REFERENCE = re.compile(r"^\[format\('@Microsoft\.KeyVault\(SecretUri=\{0\}secrets/([a-z0-9-]+)/\)', "
                                 r"reference\(resourceId\('Microsoft\.KeyVault/vaults', variables\('vaultName'\)\), "
                                 r"'[0-9-]+'\)\.vaultUri\)\]$")
# A secret setting (CONTRACT §1): *_KEY, *_SECRET, and a bare connection setting (its identity form, `X__...`, is not).
SECRET_NAME = re.compile(r"(_KEY|_SECRET|PASSWORD|Connection|AzureWebJobsStorage)$")


@pytest.fixture(scope="module")
def template() -> dict:
    return json.loads(ARM.read_text(encoding="utf-8"))


def _of_type(template: dict, kind: str) -> list[dict]:
    return [r for r in template["resources"] if r["type"] == kind]


def _one(template: dict, kind: str) -> dict:
    [resource] = _of_type(template, kind)
    return resource


def _app_settings(template: dict) -> dict[str, str]:
    [config] = [r for r in _of_type(template, "Microsoft.Web/sites/config") if r["name"].endswith("'appsettings')]")]
    return config["properties"]


def contract_settings() -> list[str]:
    section = re.search(r"^## 1\..*?(?=^## )", CONTRACT.read_text(encoding="utf-8"), re.S | re.M).group(0)
    rows = re.findall(r"^\| (`.*?) \|", section, re.M)
    names = [name for row in rows for name in re.findall(r"`([A-Za-z0-9_]+)`", row)]
    assert len(names) >= 17, names                  # the table was read
    return names


# --- settings ----------------------------------------------------------------------------------------------------------

def test_every_contract_setting_is_an_app_setting(template):
    settings = _app_settings(template)
    missing = [n for n in contract_settings() if n not in settings
               and not (n == "ServiceBusConnection" and "ServiceBusConnection__fullyQualifiedNamespace" in settings)]
    assert missing == []


def test_secrets_are_only_key_vault_references_to_secrets_the_vault_holds(template):
    settings = _app_settings(template)
    secret_settings = {n: v for n, v in settings.items() if SECRET_NAME.search(n)}
    assert {"AUTHORIZENET_TRANSACTION_KEY", "AUTHORIZENET_SIGNATURE_KEY", "W365_WEBHOOK_KEY",
            "W365_PROVIDER_SIGNING_KEY", "DATAVERSE_CLIENT_SECRET", "AUTHORIZENET_CLIENT_KEY"} <= set(secret_settings)
    referenced = {}
    for name, value in secret_settings.items():
        match = KEY_VAULT_REFERENCE.match(value)
        assert match, f"{name} is not a Key Vault reference: {value}"
        referenced[name] = match.group(1)
    vault_secrets = {s["name"] for s in template["variables"]["secrets"]}
    assert set(referenced.values()) == vault_secrets
    # the secret values come only from secure parameters, never from a literal or a plain parameter
    for secret in template["variables"]["secrets"]:
        parameter = re.fullmatch(r"\[parameters\('(\w+)'\)\]", secret["value"]).group(1)
        assert template["parameters"][parameter]["type"] == "securestring"
        assert template["parameters"][parameter]["defaultValue"] == ""
    [vault_secret] = _of_type(template, "Microsoft.KeyVault/vaults/secrets")
    assert vault_secret["condition"] == "[not(empty(variables('secrets')[copyIndex()].value))]"


def test_no_connection_string_with_a_key_anywhere(template):
    settings = _app_settings(template)
    text = json.dumps(template)
    for marker in ("SharedAccessKey", "AccountKey", "listKeys", "listConnectionStrings", "InstrumentationKey="):
        assert marker not in text
    assert "ServiceBusConnection" not in settings          # the identity form, never a SAS connection string
    assert settings["ServiceBusConnection__fullyQualifiedNamespace"] == \
        "[format('{0}.servicebus.windows.net', variables('serviceBusName'))]"
    assert "AzureWebJobsStorage" not in settings and settings["AzureWebJobsStorage__accountName"]
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"
    assert _one(template, "Microsoft.ServiceBus/namespaces")["properties"]["disableLocalAuth"] is True
    assert _one(template, "Microsoft.Storage/storageAccounts")["properties"]["allowSharedKeyAccess"] is False
    assert _one(template, "Microsoft.Insights/components")["properties"]["DisableLocalAuth"] is True


def test_real_mode_with_the_managed_identity_for_dataverse_by_default(template):
    settings = _app_settings(template)
    assert settings["W365_MODE"] == "real"
    assert template["parameters"]["dataverseUseManagedIdentity"]["defaultValue"] is True
    assert settings["DATAVERSE_USE_MANAGED_IDENTITY"] == \
        "[if(parameters('dataverseUseManagedIdentity'), 'true', 'false')]"
    assert settings["W365_WORK_QUEUE"] == "[variables('queueName')]" and template["variables"]["queueName"] == "w365-work"


# --- the hosting ----------------------------------------------------------------------------------------------------

def test_function_app_on_flex_consumption_python_311_with_a_system_assigned_identity(template):
    plan = _one(template, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"} and plan["properties"]["reserved"] is True
    app = _one(template, "Microsoft.Web/sites")
    assert app["kind"] == "functionapp,linux" and app["identity"] == {"type": "SystemAssigned"}
    config = app["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"] == {"type": "SystemAssignedIdentity"}
    assert app["properties"]["httpsOnly"] is True and app["properties"]["keyVaultReferenceIdentity"] == "SystemAssigned"
    # Flex takes the runtime from functionAppConfig and refuses these as app settings
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(_app_settings(template))


def test_the_work_queue_deduplicates_limits_deliveries_and_dead_letters(template):
    queue = _one(template, "Microsoft.ServiceBus/namespaces/queues")
    properties = queue["properties"]
    assert properties["requiresDuplicateDetection"] is True
    assert properties["deadLetteringOnMessageExpiration"] is True
    assert properties["maxDeliveryCount"] == "[parameters('maxDeliveryCount')]"
    assert template["parameters"]["maxDeliveryCount"]["defaultValue"] == 10
    assert re.fullmatch(r"PT\d+M", template["parameters"]["duplicateDetectionWindow"]["defaultValue"])
    # duplicate detection exists on Standard and Premium only
    assert _one(template, "Microsoft.ServiceBus/namespaces")["sku"]["name"] in ("Standard", "Premium")
    host = json.loads((REPO / "host.json").read_text())
    assert properties["lockDuration"] == "PT5M" == "PT" + str(int(host["functionTimeout"].split(":")[1])) + "M"


def test_insights_on_log_analytics_and_a_key_vault_with_rbac(template):
    insights = _one(template, "Microsoft.Insights/components")
    assert insights["properties"]["WorkspaceResourceId"].startswith(
        "[resourceId('Microsoft.OperationalInsights/workspaces'")
    vault = _one(template, "Microsoft.KeyVault/vaults")["properties"]
    assert vault["enableRbacAuthorization"] is True and vault["enablePurgeProtection"] is True
    assert "accessPolicies" not in vault


# --- roles ----------------------------------------------------------------------------------------------------------

def _grants(template: dict) -> set[tuple[str, str]]:
    grants = set()
    for assignment in _of_type(template, "Microsoft.Authorization/roleAssignments"):
        role = re.search(r"variables\('roles'\)\.(\w+)", assignment["properties"]["roleDefinitionId"]).group(1)
        assert assignment["properties"]["principalType"] == "ServicePrincipal"
        assert "identity.principalId" in assignment["properties"]["principalId"]
        grants.add((template["variables"]["roles"][role], assignment["scope"]))
    return grants


def test_least_privilege_role_assignments(template):
    vault = "[format('Microsoft.KeyVault/vaults/{0}', variables('vaultName'))]"
    queue = ("[format('Microsoft.ServiceBus/namespaces/{0}/queues/{1}', variables('serviceBusName'), "
             "variables('queueName'))]")
    storage = "[format('Microsoft.Storage/storageAccounts/{0}', variables('storageName'))]"
    insights = "[format('Microsoft.Insights/components/{0}', variables('insightsName'))]"
    assert _grants(template) == {
        (KEY_VAULT_SECRETS_USER, vault),
        (SERVICE_BUS_DATA_SENDER, queue), (SERVICE_BUS_DATA_RECEIVER, queue),        # the queue, not the namespace
        (STORAGE_BLOB_DATA_OWNER, storage), (STORAGE_TABLE_DATA_CONTRIBUTOR, storage),
        (MONITORING_METRICS_PUBLISHER, insights),
    }


def test_app_settings_wait_for_the_roles_so_references_resolve_on_first_start(template):
    [config] = _of_type(template, "Microsoft.Web/sites/config")
    waits_for = " ".join(config["dependsOn"])
    assert waits_for.count("Microsoft.Authorization/roleAssignments") == len(
        _of_type(template, "Microsoft.Authorization/roleAssignments"))


# --- the template is well formed -----------------------------------------------------------------------------------

def _expressions(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _expressions(value)
    elif isinstance(node, str) and node.startswith("[") and not node.startswith("[["):
        yield node


def test_every_expression_is_balanced_and_names_declared_parameters_and_variables(template):
    for expression in _expressions(template):
        assert expression.endswith("]"), expression
        code = re.sub(r"'(?:[^']|'')*'", "''", expression[1:-1])          # string literals out of the way
        assert code.count("(") == code.count(")") and code.count("[") == code.count("]"), expression
        for name in re.findall(r"parameters\('(\w+)'\)", expression):
            assert name in template["parameters"], expression
        for name in re.findall(r"variables\('(\w+)'\)", expression):
            assert name in template["variables"], expression


# --- the Bicep says the same ------------------------------------------------------------------------------------------

def test_the_bicep_declares_the_same_resources_settings_and_roles(template):
    bicep = BICEP.read_text(encoding="utf-8")
    declared = set(re.findall(r"^resource \w+ '([\w./]+)@[\w-]+'", bicep, re.M))
    assert declared == {r["type"] for r in template["resources"]}
    settings_block = re.search(r"name: 'appsettings'.*?properties: \{(.*?)\n  \}", bicep, re.S).group(1)
    bicep_settings = dict(re.findall(r"^    (\w+): (.+?)(?: //.*)?$", settings_block, re.M))
    assert set(bicep_settings) == set(_app_settings(template))
    for name, value in bicep_settings.items():
        if SECRET_NAME.search(name):
            assert re.fullmatch(r"'@Microsoft\.KeyVault\(SecretUri=\$\{vault\.properties\.vaultUri\}secrets/"
                                r"[a-z0-9-]+/\)'", value), name
    for role_id in template["variables"]["roles"].values():
        assert role_id in bicep
    for scope in ("vault", "workQueue", "storage", "insights"):
        assert re.search(rf"scope: {scope}\n", bicep)
    assert "scope: serviceBus\n" not in bicep
    for fragment in ("requiresDuplicateDetection: true", "deadLetteringOnMessageExpiration: true",
                     "maxDeliveryCount: maxDeliveryCount", "enableRbacAuthorization: true",
                     "name: 'FC1', tier: 'FlexConsumption'", "runtime: { name: 'python', version: '3.11' }",
                     "identity: { type: 'SystemAssigned' }", "disableLocalAuth: true", "allowSharedKeyAccess: false"):
        assert fragment in bicep, fragment
    assert re.findall(r"^@secure\(\)\nparam (\w+)", bicep, re.M) == [
        n for n, p in template["parameters"].items() if p["type"] == "securestring"]

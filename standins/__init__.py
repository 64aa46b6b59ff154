"""Everything only local mode and the tests use: the Dataverse stand-in (dataverse/), the Authorize.Net sandbox
simulator (authorizenet.py) and its Accept.js stand-in (acceptjs/), the demo provisioning provider
(demo_provider.py), the in-process work queue (queue.py), the dev host (devhost/) and the payload builders
(payloads.py). Nothing here ships (.funcignore); the function app imports it only when W365_MODE=local.

The built-in keys below are the stand-ins' own; real mode never accepts them."""

LOCAL_DATAVERSE_PATH = "/_local/dataverse"
LOCAL_GATEWAY_PATH = "/_local/authorizenet"
LOCAL_PROVIDER_PATH = "/_local/provider"          # standins/demo_provider.py, mounted by the dev host
LOCAL_WEBHOOK_KEY = "local-webhook-key"
LOCAL_SIGNATURE_KEY = "LOCALSIGNATUREKEY0123456789ABCDEF"
LOCAL_GATEWAY_LOGIN = "local-login"
LOCAL_GATEWAY_KEY = "localTransKey123"            # the schema caps transactionKey at 16
LOCAL_PROVIDER_SIGNING_KEY = "local-provider-signing-key"
# The stand-in's environment (WhoAmI's OrganizationId); the payload builders put it in every context by default.
LOCAL_ORGANIZATION_ID = "4ef5b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4c"

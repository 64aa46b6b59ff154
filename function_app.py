"""The Functions app: one Blueprint per capability. Importing this module does no I/O and reads no setting."""
import azure.functions as func

from handlers import platform
from handlers.charging import triggers as charging
from handlers.credit_hold import triggers as credit_hold
from handlers.gateway_webhooks import triggers as gateway_webhooks
from handlers.orders import triggers as orders
from handlers.payment_profiles import triggers as payment_profiles

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (platform.bp, payment_profiles.bp, credit_hold.bp, charging.bp, orders.bp, gateway_webhooks.bp):
    app.register_functions(blueprint)

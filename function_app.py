"""The Functions app: one Blueprint per capability. Importing this module does no I/O and reads no setting."""
import azure.functions as func

from handlers import platform
from handlers import payment_profiles
from handlers import credit_hold
from handlers import gateway_webhooks
from handlers import charging
from handlers import orders

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (platform.bp, payment_profiles.bp, credit_hold.bp, charging.bp, orders.bp, gateway_webhooks.bp):
    app.register_functions(blueprint)

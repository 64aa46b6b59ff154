"""The Functions app: the entry (app/) registers every capability's Blueprint explicitly. Importing this module does
no I/O and reads no setting."""
import azure.functions as func

from app.capabilities import registry

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in registry().blueprints:
    app.register_functions(blueprint)

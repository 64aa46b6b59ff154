"""The Functions app: one Blueprint per capability. Importing this module does no I/O and reads no setting."""
import azure.functions as func

from handlers import platform

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (platform.bp,):
    app.register_functions(blueprint)

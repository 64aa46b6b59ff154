"""Authorize.Net adapter: JSON client (client.py), webhook signature (signature.py), sandbox simulator (simulator.py)
and the Accept.js stand-in (acceptjs/Accept.js) that local mode serves through the simulator's WSGI app."""

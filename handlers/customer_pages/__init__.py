"""Shared parts of the customer-facing pages (Profile Request, Order Approval): secure links (links.py), the page
layout, headers, escaping and the Accept.js card form (html.py), and the Functions glue for both (http.py)."""

"""The demo: seeders that simulate agent systems and send them to a server as clients would.

A home of its own because it is a client of the product, not part of it: the seeders speak to
ingest over HTTP through the SDK in sdk/, so the SDK is a requirement of the demo
(requirements-demo.txt), never of the server.
"""

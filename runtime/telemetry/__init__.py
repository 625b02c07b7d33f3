"""What an operator sees of a running process: request ids (`context`), logs
(`logs`), Prometheus metrics (`metrics`) and OpenTelemetry traces (`tracing`).

Nothing here is on by import: `server.py` configures logging and tracing, and
`create_app` makes one `Metrics` per application.
"""

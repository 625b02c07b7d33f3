"""The server's edge: what bounds a request before the app spends anything on it.

- `request_limits`: an ASGI middleware; bodies over the route's limit get 413
  before they are read whole, JSON nested too deep gets 400 (over HTTP) or
  closes the socket (`ws_messages`, over WebSockets).
- `json_depth`: the nesting check, without a parser.
- `protocol`: uvicorn's HTTP protocol with header and body deadlines, a head
  size limit and a connection cap.
- `connections`: the cap, from settings and the file-descriptor limit.
- `refusals`: the error answers, in each surface's shape.
"""

from edge.connections import effective_connection_cap
from edge.protocol import ClientLimits, http_protocol
from edge.request_limits import RequestLimits

__all__ = ["ClientLimits", "RequestLimits", "effective_connection_cap", "http_protocol"]

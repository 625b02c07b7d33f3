"""`server.py`'s operator commands beyond serving (each module one command group)."""

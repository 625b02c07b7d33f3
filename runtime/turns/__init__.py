"""Turns: accepting messages, running the assistant, interrupting it."""

from runtime.turns.service import Turns

__all__ = ["Turns"]

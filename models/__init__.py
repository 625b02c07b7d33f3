"""Tortoise ORM models. Only `runtime/` imports this package."""

from models.conversation import Message, Session, SystemEvent, Thread, Turn
from models.credentials import ClientSecret, ProviderKey
from models.documents import TrustedDocument
from models.feedback import Feedback
from models.memory import ContextSummary, WalletMemory
from models.operations import Replica
from models.tenancy import ApiKey, App

MODEL_MODULES = [
    "models.tenancy",
    "models.conversation",
    "models.documents",
    "models.credentials",
    "models.operations",
    "models.memory",
    "models.feedback",
]
MIGRATIONS_MODULE = "models.migrations"

__all__ = [
    "MIGRATIONS_MODULE",
    "MODEL_MODULES",
    "ApiKey",
    "App",
    "ClientSecret",
    "ContextSummary",
    "Feedback",
    "Message",
    "ProviderKey",
    "Replica",
    "Session",
    "SystemEvent",
    "Thread",
    "TrustedDocument",
    "Turn",
    "WalletMemory",
]

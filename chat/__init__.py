"""Buyer–seller chat hub: protocol, routing, delivery, presence and storage."""

__version__ = "0.1.0"

"""Load generator for the chat hub: ``python -m chat.loadtest --help``."""

from .options import Options
from .runner import render, report, run

__all__ = ["Options", "render", "report", "run"]

"""Shared fixtures: real servers on port 0, real Redis and PostgreSQL where needed."""

from __future__ import annotations

import os

os.environ.setdefault("PYTHONASYNCIODEBUG", "0")

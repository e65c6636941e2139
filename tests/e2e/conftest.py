"""The e2e fixtures live in ``tests/support/system.py`` (shared with ``tests/faults``)."""

from tests.support.system import PRESENCE_ENV, System  # noqa: F401  (re-exported)

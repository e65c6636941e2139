"""Parley load tests (locust). Scenarios are user classes; with no class named, all of them
run by weight (the *mixed* scenario).

    locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 2m --host http://127.0.0.1:8080
    locust -f loadtests/locustfile.py ... ChattyUser           # one scenario
    python loadtests/run.py --scenario chatty ...              # the same, plus the report

Settings are ``PARLEY_LT_*`` environment variables (``lt_config.py``; README "Load testing").
With ``PARLEY_LT_API_KEY`` set, ``ApiPublisherUser`` (the Server API through
``parley_client``, ``lt_api.py``) is one more class, in the mixed run too.
"""

import lt_hooks  # noqa: F401  (registers the run-level event listeners)
from lt_scenarios import ChattyUser, FanoutUser, HistoryUser, PresenceUser, StormUser
from lt_user import CONFIG

__all__ = ["ChattyUser", "FanoutUser", "HistoryUser", "PresenceUser", "StormUser"]
if CONFIG.api_key:
    from lt_api import ApiPublisherUser

    __all__ += ["ApiPublisherUser"]

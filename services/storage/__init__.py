"""The storage library: every port with its memory adapter and pure rules in ``<port>.py``,
its engine adapters in ``<port>_<tech>.py``. Processes (gateway, worker, presence service)
import it; it imports none of them."""

"""gunicorn entry point for the Neutron API.

Resets sys.argv (oslo.config would otherwise parse gunicorn's flags) and
stamps each request's start for the access log (k6access).
Config files come from OS_NEUTRON_CONFIG_DIR / OS_NEUTRON_CONFIG_FILES.
"""
import sys

sys.argv = [sys.argv[0]]

from neutron.wsgi.api import application as _app  # noqa: E402

from k6access import stamped  # noqa: E402

application = stamped(_app)

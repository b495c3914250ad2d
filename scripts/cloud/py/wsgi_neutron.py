"""gunicorn entry point for the Neutron API.

Resets sys.argv (oslo.config would otherwise parse gunicorn's flags).
Config files come from OS_NEUTRON_CONFIG_DIR / OS_NEUTRON_CONFIG_FILES.
"""
import sys

sys.argv = [sys.argv[0]]

from neutron.wsgi.api import application  # noqa: E402,F401

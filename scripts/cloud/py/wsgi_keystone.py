"""gunicorn entry point for Keystone.

Keystone's WSGI module parses sys.argv with oslo.config; under gunicorn argv
holds gunicorn's own flags, so reset it before importing the application.
Config files come from OS_KEYSTONE_CONFIG_DIR / OS_KEYSTONE_CONFIG_FILES.
"""
import sys

sys.argv = [sys.argv[0]]

from keystone.wsgi.api import application  # noqa: E402,F401

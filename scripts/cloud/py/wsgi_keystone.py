"""gunicorn entry point for Keystone.

Keystone's WSGI module parses sys.argv with oslo.config; under gunicorn argv
holds gunicorn's own flags, so reset it before importing the application.
The application is wrapped by k6access (start time for the access log).
Config files come from OS_KEYSTONE_CONFIG_DIR / OS_KEYSTONE_CONFIG_FILES.
"""
import sys

sys.argv = [sys.argv[0]]

from keystone.wsgi.api import application as _app  # noqa: E402

from k6access import stamped  # noqa: E402

application = stamped(_app)

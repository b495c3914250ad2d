"""gunicorn entry point for the Octavia API plus its controller worker.

* sys.argv is replaced (oslo.config would parse gunicorn's flags) by a
  --config-file pointing at $KURYR6_OCTAVIA_CONF.
* The application is wrapped by k6access (start time for the access log).
* The octavia-worker RPC endpoint runs inside this process: with the
  ``fake://`` oslo.messaging transport a cast only reaches a server that
  listens on the same transport object, i.e. in the same process.
"""
import os
import sys

sys.argv = ['octavia-api', '--config-file', os.environ['KURYR6_OCTAVIA_CONF']]

import oslo_messaging as messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_log import log as logging  # noqa: E402

from octavia.api import app as _app  # noqa: E402
from octavia.common import constants  # noqa: E402
from octavia.common import rpc  # noqa: E402

from k6access import stamped  # noqa: E402

application = stamped(_app.setup_app(argv=sys.argv))

LOG = logging.getLogger('kuryr6.octavia_worker')


def _start_worker():
    from octavia.controller.queue.v2 import endpoints
    target = messaging.Target(topic=constants.TOPIC_AMPHORA_V2,
                              server=cfg.CONF.host, fanout=False)
    server = rpc.get_server(target, [endpoints.Endpoints()])
    server.start()
    LOG.info('in-process octavia worker listening on topic %s',
             constants.TOPIC_AMPHORA_V2)
    return server


_worker = _start_worker()

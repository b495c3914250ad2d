"""gunicorn entry point for the Octavia API plus its controller worker.

* sys.argv is replaced (oslo.config would parse gunicorn's flags) by a
  --config-file pointing at $KURYR6_OCTAVIA_CONF.
* The application is wrapped by k6access (start time for the access log).
* The octavia-worker RPC endpoint runs inside this process: with the
  ``fake://`` oslo.messaging transport a cast only reaches a server that
  listens on the same transport object, i.e. in the same process.
* When octavia.conf enables provider agents (the OVN provider's), Octavia's
  driver agent runs as a child (octavia_driver_agent.py): it inherits this
  process group, so stopping the server by its PID's group stops it too.
"""
import os
import subprocess
import sys

sys.argv = ['octavia-api', '--config-file', os.environ['KURYR6_OCTAVIA_CONF']]

import oslo_messaging as messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_log import log as logging  # noqa: E402

from octavia.api import app as _app  # noqa: E402
from octavia.common import constants  # noqa: E402
from octavia.common import rpc  # noqa: E402

from k6access import stamped  # noqa: E402
from k6driverlib import use_configured_sockets  # noqa: E402


def _start_driver_agent():
    """Start the driver agent unless the one started before still runs.

    Before the app: loading the OVN provider waits for the agent's sockets.
    oslo.config has not parsed octavia.conf yet, so read the two options
    the plain way.
    """
    import configparser
    conf = configparser.RawConfigParser(strict=False)
    conf.read(os.environ['KURYR6_OCTAVIA_CONF'])
    if not conf.get('driver_agent', 'enabled_provider_agents', fallback=''):
        return None
    run_dir = os.path.dirname(conf.get('driver_agent', 'status_socket_path'))
    pidfile = os.path.join(run_dir, 'driver-agent.pid')
    try:
        with open(pidfile) as f:
            pid = int(f.read())
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            if b'octavia_driver_agent.py' in f.read():
                return pid
    except (OSError, ValueError):
        pass
    # gunicorn runs with the state dir as its working directory
    log = open(os.path.join('logs', 'octavia-driver-agent.log'), 'ab')
    agent = subprocess.Popen(
        [sys.executable,
         os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'octavia_driver_agent.py'),
         '--config-file', os.environ['KURYR6_OCTAVIA_CONF']],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        close_fds=True)
    with open(pidfile, 'w') as f:
        f.write(str(agent.pid))
    return agent.pid


_driver_agent = _start_driver_agent()
use_configured_sockets()
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


"""octavia-driver-agent for a local cloud, started by wsgi_octavia.py.

Octavia's own driver agent (status, stats and get listeners, plus the
enabled provider agents: ovn-octavia-provider's here), with the provider
library pointed at the state dir's sockets (k6driverlib). Usage:
``python octavia_driver_agent.py --config-file octavia.conf``.
"""
import sys

from k6driverlib import use_configured_sockets

from octavia.cmd import driver_agent

if __name__ == '__main__':
    use_configured_sockets()
    sys.argv[0] = 'octavia-driver-agent'
    sys.exit(driver_agent.main())

"""Point octavia-lib's DriverLibrary at the sockets octavia.conf names.

Provider drivers (ovn-octavia-provider's helper, in the API process and in
its driver-agent process) build ``DriverLibrary()`` with no arguments, so
they use octavia-lib's defaults under /var/run/octavia, while the driver
agent listens where ``[driver_agent] *_socket_path`` says. Production sets
both to /var/run/octavia; a local cloud keeps everything in its state dir,
so the defaults are taken from the config at construction time instead.
"""
from octavia_lib.api.drivers import driver_lib
from oslo_config import cfg

_original_init = driver_lib.DriverLibrary.__init__


def _init_from_config(self, status_socket=None, stats_socket=None,
                      get_socket=None, **kwargs):
    agent = cfg.CONF.driver_agent
    _original_init(self,
                   status_socket=status_socket or agent.status_socket_path,
                   stats_socket=stats_socket or agent.stats_socket_path,
                   get_socket=get_socket or agent.get_socket_path,
                   **kwargs)


def use_configured_sockets():
    # octavia's options must be registered before the first DriverLibrary
    import octavia.common.config  # noqa: F401
    driver_lib.DriverLibrary.__init__ = _init_from_config

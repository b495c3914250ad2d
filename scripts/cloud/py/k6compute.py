"""Octavia compute driver for the local cloud: no servers, but ports
attached the way Nova attaches them.

Octavia's real network driver (``allowed_address_pairs_driver``) creates the
amphora's VRRP port and asks the compute driver to attach it. Octavia's no-op
compute driver answers with an interface that has no fixed IPs, and the load
balancer goes to ERROR. Nova's attach, seen from Neutron, sets the port's
``device_id`` to the server and its ``device_owner`` to ``compute:<az>``;
this driver does exactly that (and the reverse on detach), so Neutron holds
the ports a production amphora has. Servers stay the no-op driver's.

Registered as ``k6_neutron_attach_driver`` in ``octavia.compute.drivers`` by
the ``kuryr6_local_cloud-0.dist-info`` beside it (on gunicorn's
--pythonpath, so nothing is written into the shared venv).
"""
from types import SimpleNamespace

from openstack import exceptions as os_exceptions

from octavia.common import clients
from octavia.compute.drivers.noop_driver.driver import NoopComputeDriver

# Nova's default availability zone.
OWNER = 'compute:nova'


def _network():
    return clients.NeutronAuth.get_neutron_client().network


class NeutronAttachComputeDriver(NoopComputeDriver):
    def attach_network_or_port(self, compute_id, network_id=None,
                               ip_address=None, port_id=None):
        net = _network()
        if port_id is None:
            body = {'network_id': network_id}
            if ip_address:
                body['fixed_ips'] = [{'ip_address': ip_address}]
            port_id = net.create_port(**body).id
        port = net.update_port(port_id, device_id=compute_id,
                               device_owner=OWNER)
        # What novaclient's interface_attach returns, as Octavia reads it.
        return SimpleNamespace(net_id=port.network_id, port_id=port.id,
                               fixed_ips=list(port.fixed_ips))

    def detach_port(self, compute_id, port_id):
        try:
            _network().update_port(port_id, device_id='', device_owner='')
        except os_exceptions.ResourceNotFound:
            pass

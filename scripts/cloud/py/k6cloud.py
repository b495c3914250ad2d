"""Helpers for scripts/cloud/up.sh, run with the cloud venv's python.

Subcommands (each imports only what it needs):

  port-free PORT...            exit 1 and print the first port that cannot be
                               bound on 127.0.0.1
  neutron-db CONF              build Neutron's schema from its models (the
                               alembic migrations do not run on SQLite), add
                               the default security-group rule templates, and
                               stamp the alembic heads
  octavia-db CONF              same for Octavia: schema from the models,
                               lookup tables, placeholders, stamp head
  octavia-ca DIR               throw-away CA (ca.pem, ca.key) for octavia's
                               local_cert_generator
  catalog                      idempotent Keystone catalog/users setup over
                               the REST API (settings from KURYR6_* env vars)
"""
import json
import os
import socket
import sys


def _die(msg):
    sys.stderr.write('k6cloud: %s\n' % msg)
    sys.exit(1)


# ---------------------------------------------------------------- ports ---

def cmd_port_free(ports):
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(('127.0.0.1', int(port)))
        except OSError:
            print(port)
            return 1
        finally:
            s.close()
    return 0


# -------------------------------------------------------------- neutron ---

def _sqlite_url_from_conf(conf_path):
    import configparser
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(conf_path)
    return cp.get('database', 'connection')


def cmd_neutron_db(conf_path):
    import sqlalchemy as sa
    from neutron.db.migration.models import head

    url = _sqlite_url_from_conf(conf_path)
    engine = sa.create_engine(url)
    metadata = head.get_metadata()
    metadata.create_all(engine)

    # The migration that introduced default security-group rule templates
    # (c33da356b165) also inserted the four "legacy" templates. create_all()
    # only makes the table, so without these rows new security groups would
    # get no rules at all. Rows: egress v4/v6 for every group, ingress from
    # the group itself (remote_group_id PARENT) for the default group only.
    import uuid
    templates = [
        # direction, ethertype, remote_group_id, in_default, in_non_default
        ('egress', 'IPv4', None, True, True),
        ('egress', 'IPv6', None, True, True),
        ('ingress', 'IPv4', 'PARENT', True, False),
        ('ingress', 'IPv6', 'PARENT', True, False),
    ]
    std = metadata.tables['standardattributes']
    tpl = metadata.tables['securitygroupdefaultrules']
    with engine.begin() as conn:
        existing = conn.execute(sa.select(sa.func.count()).select_from(tpl))
        if existing.scalar() == 0:
            for direction, ethertype, remote_group, in_def, in_non_def in \
                    templates:
                desc = ('Legacy default SG rule for %s traffic' % direction)
                res = conn.execute(sa.insert(std).values(
                    resource_type='securitygroupdefaultrules',
                    description=desc))
                conn.execute(sa.insert(tpl).values(
                    id=str(uuid.uuid4()),
                    standard_attr_id=res.inserted_primary_key[0],
                    direction=direction, ethertype=ethertype,
                    remote_group_id=remote_group,
                    used_in_default_sg=in_def,
                    used_in_non_default_sg=in_non_def))
    engine.dispose()

    # Stamp alembic heads in-process (same as `neutron-db-manage stamp heads`
    # without paying another interpreter start-up).
    from neutron.db.migration import cli
    sys.argv = ['neutron-db-manage', '--config-file', conf_path,
                'stamp', 'heads']
    cli.main()
    return 0


# -------------------------------------------------------------- octavia ---

def cmd_octavia_db(conf_path):
    import sqlalchemy as sa
    from sqlalchemy import orm
    from octavia.common import constants as c
    from octavia.db import base_models
    from octavia.db import models as m

    url = _sqlite_url_from_conf(conf_path)
    engine = sa.create_engine(url)
    base_models.BASE.metadata.create_all(engine)

    lookups = [
        (m.ProvisioningStatus, c.SUPPORTED_PROVISIONING_STATUSES),
        (m.OperatingStatus, c.SUPPORTED_OPERATING_STATUSES),
        (m.Protocol, c.SUPPORTED_PROTOCOLS),
        (m.Algorithm, c.SUPPORTED_LB_ALGORITHMS),
        (m.AmphoraRoles, c.SUPPORTED_AMPHORA_ROLES),
        (m.LBTopology, c.SUPPORTED_LB_TOPOLOGIES),
        (m.SessionPersistenceType, c.SUPPORTED_SP_TYPES),
        (m.HealthMonitorType, c.SUPPORTED_HEALTH_MONITOR_TYPES),
        (m.VRRPAuthMethod, c.SUPPORTED_VRRP_AUTH),
        (m.L7RuleType, c.SUPPORTED_L7RULE_TYPES),
        (m.L7RuleCompareType, c.SUPPORTED_L7RULE_COMPARE_TYPES),
        (m.L7PolicyAction, c.SUPPORTED_L7POLICY_ACTIONS),
        (m.ClientAuthenticationMode, c.SUPPORTED_CLIENT_AUTH_MODES),
    ]
    with orm.Session(engine) as session, session.begin():
        for model, names in lookups:
            have = {r[0] for r in session.execute(sa.select(model.name))}
            for name in names:
                if name not in have:
                    session.add(model(name=name))
        # The migrations also create 'DELETED' placeholder rows that deleted
        # LBs point at (flavor / availability zone and their profiles).
        nil = c.NIL_UUID
        if session.get(m.FlavorProfile, nil) is None:
            session.add(m.FlavorProfile(
                id=nil, name='DELETED-PLACEHOLDER',
                provider_name=c.DELETED, flavor_data='{}'))
            session.flush()
        if session.get(m.Flavor, nil) is None:
            session.add(m.Flavor(
                id=nil, flavor_profile_id=nil, name='DELETED-PLACEHOLDER',
                enabled=False, description='Placeholder for DELETED LBs'))
        if session.get(m.AvailabilityZoneProfile, nil) is None:
            session.add(m.AvailabilityZoneProfile(
                id=nil, name='DELETED-PLACEHOLDER',
                provider_name=c.DELETED, availability_zone_data='{}'))
            session.flush()
        if session.get(m.AvailabilityZone, nil) is None:
            session.add(m.AvailabilityZone(
                name=nil, availability_zone_profile_id=nil, enabled=False,
                description='Placeholder for DELETED LBs'))
    engine.dispose()

    # `octavia-db-manage stamp head`, in-process.
    from alembic import command as alembic_command
    from alembic import config as alembic_config
    import octavia.db.migration as mig
    ini = os.path.join(os.path.dirname(mig.__file__), 'alembic.ini')
    acfg = alembic_config.Config(ini)
    acfg.set_main_option('sqlalchemy.url', url)
    acfg.set_main_option('script_location', os.path.join(
        os.path.dirname(mig.__file__), 'alembic_migrations'))
    alembic_command.stamp(acfg, 'head')
    return 0


def cmd_octavia_ca(directory):
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         'kuryr6 local octavia CA')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                           critical=True)
            .sign(key, hashes.SHA256()))
    key_path = os.path.join(directory, 'ca.key')
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(os.path.join(directory, 'ca.pem'), 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return 0


# -------------------------------------------------------------- catalog ---

class _Keystone:
    def __init__(self, url, session):
        self.url = url.rstrip('/')
        self.s = session

    def req(self, method, path, body=None, ok=(200, 201, 204)):
        r = self.s.request(method, self.url + path,
                           data=None if body is None else json.dumps(body))
        if r.status_code not in ok:
            _die('%s %s -> %s %s' % (method, path, r.status_code, r.text))
        return r.json() if r.content else None

    def find(self, collection, key, **query):
        res = self.req('GET', '/v3/%s' % collection, ok=(200,)) \
            if not query else self.s.get(self.url + '/v3/' + collection,
                                         params=query).json()
        return res[key]


def cmd_catalog():
    import requests

    env = os.environ
    ks_url = 'http://127.0.0.1:%s' % env['KURYR6_KEYSTONE_PORT']
    region = 'RegionOne'
    with open(env['KURYR6_ADMIN_PASSWORD_FILE']) as f:
        admin_pw = f.read().strip()
    with open(env['KURYR6_SERVICE_PASSWORD_FILE']) as f:
        service_pw = f.read().strip()

    s = requests.Session()
    s.headers['Content-Type'] = 'application/json'
    auth = {'auth': {'identity': {'methods': ['password'], 'password': {
        'user': {'name': 'admin', 'domain': {'id': 'default'},
                 'password': admin_pw}}},
        'scope': {'project': {'name': 'admin',
                              'domain': {'id': 'default'}}}}}
    r = s.post(ks_url + '/v3/auth/tokens', data=json.dumps(auth))
    if r.status_code != 201:
        _die('admin login failed: %s %s' % (r.status_code, r.text))
    s.headers['X-Auth-Token'] = r.headers['X-Subject-Token']
    ks = _Keystone(ks_url, s)

    def get_list(path, key, **params):
        rr = s.get(ks_url + path, params=params)
        if rr.status_code != 200:
            _die('GET %s -> %s %s' % (path, rr.status_code, rr.text))
        return rr.json()[key]

    # project "service"
    projects = get_list('/v3/projects', 'projects', name='service',
                        domain_id='default')
    if projects:
        service_project = projects[0]['id']
    else:
        service_project = ks.req('POST', '/v3/projects', {'project': {
            'name': 'service', 'domain_id': 'default',
            'description': 'kuryr6 local service project'}})['project']['id']

    # roles
    role_ids = {}
    for role in ('admin', 'service'):
        found = get_list('/v3/roles', 'roles', name=role)
        if found:
            role_ids[role] = found[0]['id']
        else:
            role_ids[role] = ks.req('POST', '/v3/roles', {
                'role': {'name': role}})['role']['id']

    # service users (password reset to the stored one every time, so the
    # config files and Keystone always agree)
    for uname in ('neutron', 'octavia'):
        found = get_list('/v3/users', 'users', name=uname,
                         domain_id='default')
        if found:
            uid = found[0]['id']
            ks.req('PATCH', '/v3/users/%s' % uid, {'user': {
                'password': service_pw, 'enabled': True}})
        else:
            uid = ks.req('POST', '/v3/users', {'user': {
                'name': uname, 'domain_id': 'default',
                'password': service_pw,
                'default_project_id': service_project}})['user']['id']
        for role in ('admin', 'service'):
            ks.req('PUT', '/v3/projects/%s/users/%s/roles/%s' % (
                service_project, uid, role_ids[role]))

    # services and endpoints
    wanted = [
        ('keystone', 'identity', ks_url + '/v3/'),
        ('neutron', 'network',
         'http://127.0.0.1:%s' % env['KURYR6_NEUTRON_PORT']),
        ('octavia', 'load-balancer',
         'http://127.0.0.1:%s' % env['KURYR6_OCTAVIA_PORT']),
    ]
    services = get_list('/v3/services', 'services')
    endpoints = get_list('/v3/endpoints', 'endpoints')
    for name, stype, url in wanted:
        svc = [x for x in services if x['type'] == stype]
        if svc:
            sid = svc[0]['id']
        else:
            sid = ks.req('POST', '/v3/services', {'service': {
                'name': name, 'type': stype, 'enabled': True}})['service']['id']
        for iface in ('public', 'internal', 'admin'):
            eps = [e for e in endpoints if e['service_id'] == sid and
                   e['interface'] == iface]
            if not eps:
                ks.req('POST', '/v3/endpoints', {'endpoint': {
                    'service_id': sid, 'interface': iface, 'url': url,
                    'region_id': region, 'enabled': True}})
                continue
            for extra in eps[1:]:
                ks.req('DELETE', '/v3/endpoints/%s' % extra['id'])
            ep = eps[0]
            if ep['url'] != url or ep.get('region_id') != region:
                ks.req('PATCH', '/v3/endpoints/%s' % ep['id'], {'endpoint': {
                    'url': url, 'region_id': region}})
    return 0


def main(argv):
    if len(argv) < 2:
        _die(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == 'port-free':
        return cmd_port_free(args)
    if cmd == 'neutron-db':
        return cmd_neutron_db(args[0])
    if cmd == 'octavia-db':
        return cmd_octavia_db(args[0])
    if cmd == 'octavia-ca':
        return cmd_octavia_ca(args[0])
    if cmd == 'catalog':
        return cmd_catalog()
    _die('unknown subcommand %r' % cmd)


if __name__ == '__main__':
    sys.exit(main(sys.argv))

"""Helpers for scripts/cloud/up.sh, run with the cloud venv's python.

Subcommands (each imports only what it needs):

  neutron-db CONF              build Neutron's schema from its models (the
                               alembic migrations do not run on SQLite), add
                               the default security-group rule templates, and
                               stamp the alembic heads
  octavia-db CONF              same for Octavia: schema from the models,
                               lookup tables, placeholders, stamp head
  octavia-ca DIR               throw-away CA (ca.pem, ca.key) for octavia's
                               local_cert_generator
  keystone-init CONF URL       keystone-manage db_sync, fernet_setup,
                               credential_setup and bootstrap (admin password
                               from $OS_BOOTSTRAP_PASSWORD, endpoints URL) in
                               ONE interpreter (each keystone-manage process
                               spends ~1.8 s importing keystone)
  octavia-unstick DB           set provisioning_status PENDING_* -> ERROR
                               (run before Octavia starts: its in-process
                               worker died with the last server, so nothing
                               will ever finish those, and PENDING objects are
                               immutable -- ERROR ones can be deleted)
  catalog                      idempotent Keystone catalog/users setup over
                               the REST API (settings from KURYR6_* env vars)
  project NAME USER            idempotent: project NAME (domain Default), user
                               USER in it with the password in the file
                               $KURYR6_MEMBER_PASSWORD_FILE, and the `member`
                               role on NAME; prints the project id (for
                               scripts/cloud/project.sh)
"""
import json
import os
import sys


def _die(msg):
    sys.stderr.write('k6cloud: %s\n' % msg)
    sys.exit(1)


# ------------------------------------------------------------- keystone ---

def cmd_keystone_init(conf_path, url):
    import grp
    import pwd
    from keystone.cmd import cli

    _no_fsync()
    if not os.environ.get('OS_BOOTSTRAP_PASSWORD'):
        _die('OS_BOOTSTRAP_PASSWORD is not set')
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    base = ['--config-file', conf_path]
    steps = [
        ['db_sync'],
        ['fernet_setup', '--keystone-user', user, '--keystone-group', group],
        ['credential_setup', '--keystone-user', user,
         '--keystone-group', group],
        ['bootstrap', '--bootstrap-username', 'admin',
         '--bootstrap-project-name', 'admin', '--bootstrap-role-name',
         'admin', '--bootstrap-service-name', 'keystone',
         '--bootstrap-region-id', 'RegionOne',
         '--bootstrap-admin-url', url, '--bootstrap-internal-url', url,
         '--bootstrap-public-url', url],
    ]
    # The first step goes through keystone-manage's own main(), which
    # registers and configures everything; the others only re-parse the
    # command line and run the chosen command.
    cli.main(argv=['keystone-manage'] + base + steps[0])
    for step in steps[1:]:
        cli.CONF(args=base + step, project='keystone')
        cli.CONF.command.cmd_class.main()
    return 0


# -------------------------------------------------------------- neutron ---

def _no_fsync():
    """No fsync after every statement while building a schema.

    pysqlite runs DDL outside transactions, so each of the ~120 CREATEs (and
    each alembic step) is its own synced commit: about 2 s per DB here. The
    class-level listener covers every engine made in this process, including
    the ones keystone-manage / alembic create. A crash mid-way is harmless:
    up.sh marks a DB done only after success, and rebuilds it otherwise.
    """
    import sqlalchemy as sa

    def _on_connect(dbapi_conn, _record):
        if type(dbapi_conn).__module__.startswith('sqlite3'):
            cur = dbapi_conn.cursor()
            cur.execute('PRAGMA synchronous=OFF')
            cur.close()
    sa.event.listen(sa.engine.Engine, 'connect', _on_connect)


def _sqlite_url_from_conf(conf_path):
    import configparser
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(conf_path)
    return cp.get('database', 'connection')


def cmd_neutron_db(conf_path):
    import sqlalchemy as sa
    from neutron.db.migration.models import head

    url = _sqlite_url_from_conf(conf_path)
    _no_fsync()
    engine = sa.create_engine(url)
    metadata = head.get_metadata()
    with engine.begin() as conn:
        metadata.create_all(conn)

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

    from neutron.db.migration import cli
    return _stamp(cli, 'neutron-db-manage', conf_path, 'heads')


def _stamp(cli, prog, conf_path, target):
    """`PROG --config-file CONF stamp TARGET` in-process: the same as the
    command, without paying another interpreter start-up."""
    sys.argv = [prog, '--config-file', conf_path, 'stamp', target]
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
    _no_fsync()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        base_models.BASE.metadata.create_all(conn)

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
        placeholders = [
            m.FlavorProfile(id=nil, name='DELETED-PLACEHOLDER',
                            provider_name=c.DELETED, flavor_data='{}'),
            m.Flavor(id=nil, flavor_profile_id=nil,
                     name='DELETED-PLACEHOLDER', enabled=False,
                     description='Placeholder for DELETED LBs'),
            m.AvailabilityZoneProfile(id=nil, name='DELETED-PLACEHOLDER',
                                      provider_name=c.DELETED,
                                      availability_zone_data='{}'),
            m.AvailabilityZone(name=nil, availability_zone_profile_id=nil,
                               enabled=False,
                               description='Placeholder for DELETED LBs'),
        ]
        # In order, each flushed before the next: a flavor refers to its
        # profile (and an availability zone to its own).
        for row in placeholders:
            if session.get(type(row), nil) is None:
                session.add(row)
                session.flush()
    engine.dispose()

    from octavia.db.migration import cli
    return _stamp(cli, 'octavia-db-manage', conf_path, 'head')


def cmd_octavia_unstick(db_path):
    import sqlite3
    conn = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cols = [r[1] for r in conn.execute(
                'PRAGMA table_info("%s")' % table)]
            if 'provisioning_status' not in cols:
                continue
            cur = conn.execute(
                'UPDATE "%s" SET provisioning_status = \'ERROR\' '
                "WHERE provisioning_status LIKE 'PENDING%%'" % table)
            if cur.rowcount:
                print('octavia: %d %s row(s) left PENDING_* by a stopped '
                      'server set to ERROR' % (cur.rowcount, table))
        conn.commit()
    finally:
        conn.close()
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


def _admin_session(ks_url, admin_pw_file):
    """A requests session holding an admin token (project admin)."""
    import requests

    with open(admin_pw_file) as f:
        admin_pw = f.read().strip()
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
    return s


def cmd_catalog():
    env = os.environ
    ks_url = 'http://127.0.0.1:%s' % env['KURYR6_KEYSTONE_PORT']
    region = 'RegionOne'
    with open(env['KURYR6_SERVICE_PASSWORD_FILE']) as f:
        service_pw = f.read().strip()

    s = _admin_session(ks_url, env['KURYR6_ADMIN_PASSWORD_FILE'])
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

    # services and endpoints; load-balancer only on a cloud that runs
    # Octavia: an endpoint nobody serves (or another local cloud's Octavia
    # on the default port) would answer for a cloud that has none.
    wanted = [
        ('keystone', 'identity', ks_url + '/v3/'),
        ('neutron', 'network',
         'http://127.0.0.1:%s' % env['KURYR6_NEUTRON_PORT']),
    ]
    with_lb = env.get('KURYR6_CATALOG_LB', '1') == '1'
    if with_lb:
        wanted.append(('octavia', 'load-balancer',
                       'http://127.0.0.1:%s' % env['KURYR6_OCTAVIA_PORT']))
    services = get_list('/v3/services', 'services')
    endpoints = get_list('/v3/endpoints', 'endpoints')
    if not with_lb:
        for svc in [x for x in services if x['type'] == 'load-balancer']:
            for e in endpoints:
                if e['service_id'] == svc['id']:
                    ks.req('DELETE', '/v3/endpoints/%s' % e['id'])
            ks.req('DELETE', '/v3/services/%s' % svc['id'])
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


def cmd_project(name, user):
    env = os.environ
    ks_url = 'http://127.0.0.1:%s' % env['KURYR6_KEYSTONE_PORT']
    with open(env['KURYR6_MEMBER_PASSWORD_FILE']) as f:
        member_pw = f.read().strip()
    s = _admin_session(ks_url, env['KURYR6_ADMIN_PASSWORD_FILE'])
    ks = _Keystone(ks_url, s)

    def find_one(path, key, **params):
        found = ks.req('GET', path + '?' + '&'.join(
            '%s=%s' % kv for kv in sorted(params.items())))[key]
        return found[0]['id'] if found else None

    project = find_one('/v3/projects', 'projects', name=name,
                       domain_id='default')
    if project is None:
        project = ks.req('POST', '/v3/projects', {'project': {
            'name': name, 'domain_id': 'default',
            'description': 'kuryr6 test project (scripts/cloud/project.sh)'}}
        )['project']['id']
    uid = find_one('/v3/users', 'users', name=user, domain_id='default')
    if uid is None:
        uid = ks.req('POST', '/v3/users', {'user': {
            'name': user, 'domain_id': 'default', 'password': member_pw,
            'default_project_id': project}})['user']['id']
    else:
        # reset to the stored password, so secure.yaml and Keystone agree
        ks.req('PATCH', '/v3/users/%s' % uid, {'user': {
            'password': member_pw, 'enabled': True,
            'default_project_id': project}})
    # keystone-manage bootstrap creates `member` (and `reader`, implied)
    role = find_one('/v3/roles', 'roles', name='member')
    if role is None:
        role = ks.req('POST', '/v3/roles', {'role': {'name': 'member'}}
                      )['role']['id']
    ks.req('PUT', '/v3/projects/%s/users/%s/roles/%s' % (project, uid, role))
    print(project)
    return 0


def main(argv):
    if len(argv) < 2:
        _die(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == 'keystone-init':
        return cmd_keystone_init(args[0], args[1])
    if cmd == 'neutron-db':
        return cmd_neutron_db(args[0])
    if cmd == 'octavia-db':
        return cmd_octavia_db(args[0])
    if cmd == 'octavia-unstick':
        return cmd_octavia_unstick(args[0])
    if cmd == 'octavia-ca':
        return cmd_octavia_ca(args[0])
    if cmd == 'catalog':
        return cmd_catalog()
    if cmd == 'project':
        return cmd_project(args[0], args[1])
    _die('unknown subcommand %r' % cmd)


if __name__ == '__main__':
    sys.exit(main(sys.argv))

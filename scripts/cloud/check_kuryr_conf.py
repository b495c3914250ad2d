#!/usr/bin/env python3
"""Check a kuryr.conf with kuryr-kubernetes' own option definitions.

Usage (with the cloud venv's python, which has kuryr-kubernetes 10.0.0):

    "$KURYR6_VENV_BIN/python" scripts/cloud/check_kuryr_conf.py PATH \
        [--expect-id-like]

Registers every option kuryr-kubernetes defines (kuryr_kubernetes.opts
.list_kuryr_opts(), plus what its modules register on import, plus the
keystoneauth plugin options of each section's auth_type) with oslo.config,
parses PATH the way kuryr does and prints, as JSON on stdout, what kuryr
would read:

    {"neutron_defaults": {"project", "pod_subnet", "service_subnet",
                          "pod_security_groups", "ovs_bridge",
                          "resource_tags"},
     "octavia_defaults": {"member_mode", "lb_algorithm"},
     "kubernetes": {"endpoints_driver_octavia_provider"}}

Exit status 1, with one line per problem on stderr, when:
  * the file cannot be read or parsed;
  * a section kuryr knows has a key kuryr does not define (oslo.config
    silently ignores those, so a typo would go unnoticed), or the file has a
    section kuryr does not know at all;
  * a value does not pass oslo's type parsing (e.g. a bad bool or int, a
    value outside an option's choices);
  * with --expect-id-like: project, pod_subnet, service_subnet or any of
    pod_security_groups is missing or does not look like an OpenStack ID
    (UUID, or 32 hex digits as Keystone uses).
Exit status 2: bad usage.
"""
import argparse
import json
import re
import sys
import warnings

ID_RE = re.compile(r'^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-'
                   r'[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$')

REPORT = {
    'neutron_defaults': ['project', 'pod_subnet', 'service_subnet',
                         'pod_security_groups', 'ovs_bridge',
                         'resource_tags'],
    'octavia_defaults': ['member_mode', 'lb_algorithm'],
    'kubernetes': ['endpoints_driver_octavia_provider'],
}


def _normalize(section):
    # oslo.config: DEFAULT is matched exactly, other section names
    # case-insensitively
    return section if section == 'DEFAULT' else section.lower()


def _register_all(conf, cfg):
    """Register kuryr-kubernetes' options on conf; return {group: {keys}}."""
    from kuryr_kubernetes import opts as kuryr_opts

    for group, opt_list in kuryr_opts.list_kuryr_opts():
        for opt in opt_list:
            try:
                conf.register_opt(opt, group=group)
            except cfg.DuplicateOptError:
                pass  # already registered by kuryr's own import
    return _known_keys(conf, cfg)


def _opt_keys(opt):
    keys = {opt.dest}
    for dep in getattr(opt, 'deprecated_opts', []) or []:
        if dep.name:
            keys.add(dep.name.replace('-', '_'))
    return keys


def _known_keys(conf, cfg):
    known = {'DEFAULT': set()}
    for name in conf:
        value = conf[name]
        if isinstance(value, conf.GroupAttr):
            group = _normalize(name)
            known.setdefault(group, set())
            for opt_name in value:
                info = conf._get_opt_info(opt_name, name)
                known[group] |= _opt_keys(info['opt'])
        else:
            info = conf._get_opt_info(name)
            known['DEFAULT'] |= _opt_keys(info['opt'])
    return known


def _deprecated_groups(conf):
    """{(old_group, old_name)} accepted through deprecated_opts."""
    extra = {}
    for name in conf:
        value = conf[name]
        groups = [(name, value)] if isinstance(value, conf.GroupAttr) else []
        for gname, gattr in groups:
            for opt_name in gattr:
                opt = conf._get_opt_info(opt_name, gname)['opt']
                for dep in opt.deprecated_opts or []:
                    if dep.group:
                        extra.setdefault(_normalize(dep.group), set()).add(
                            (dep.name or opt.dest).replace('-', '_'))
    return extra


def main(argv):
    parser = argparse.ArgumentParser(
        description='Check a kuryr.conf with kuryr-kubernetes\' own options.')
    parser.add_argument('path')
    parser.add_argument('--expect-id-like', action='store_true',
                        help='require project, pod_subnet, service_subnet '
                             'and pod_security_groups to look like IDs')
    args = parser.parse_args(argv)

    warnings.simplefilter('ignore')  # eventlet & co. deprecation chatter
    from oslo_config import cfg

    problems = []

    # What the file holds, parsed by oslo.config's own ini parser.
    sections = {}
    try:
        cfg.ConfigParser(args.path, sections).parse()
    except OSError as e:
        print('check_kuryr_conf: cannot read %s: %s' % (args.path, e),
              file=sys.stderr)
        return 1
    except cfg.ParseError as e:
        print('check_kuryr_conf: %s' % e, file=sys.stderr)
        return 1

    conf = cfg.CONF  # kuryr's modules register on the global object
    known = _register_all(conf, cfg)

    try:
        conf(args=[], project='kuryr', default_config_files=[args.path])
    except cfg.Error as e:
        print('check_kuryr_conf: %s' % e, file=sys.stderr)
        return 1

    # keystoneauth plugin options (username, password, ...) are registered
    # by kuryr only when it loads the plugin: add those of each section's
    # auth_type so a correct [neutron] section is not reported.
    # Only for sections the file has: a section the file leaves out is not
    # configured by it, so its login options are not its business.
    from keystoneauth1 import loading as ks_loading
    present = {_normalize(s) for s in sections}
    for group in list(known):
        if group == 'DEFAULT' or 'auth_type' not in known[group] or group not in present:
            continue
        try:
            auth_type = conf[group].auth_type
        except cfg.Error:
            continue
        if not auth_type:
            continue
        try:
            plugin_opts = ks_loading.get_auth_plugin_conf_options(auth_type)
        except Exception as e:  # unknown plugin name
            problems.append('[%s] auth_type = %s: %s' % (group, auth_type, e))
            continue
        for opt in plugin_opts:
            try:
                conf.register_opt(opt, group=group)
            except cfg.DuplicateOptError:
                pass
        known = _known_keys(conf, cfg)

    for group, keys in _deprecated_groups(conf).items():
        known.setdefault(group, set()).update(keys)

    # Keys and sections kuryr does not define.
    for section, values in sections.items():
        group = _normalize(section)
        if group not in known:
            problems.append('section [%s] is not a kuryr-kubernetes option '
                            'group' % section)
            continue
        for key in values:
            if key not in known[group]:
                problems.append('[%s] %s: kuryr-kubernetes defines no such '
                                'option (oslo.config would ignore it)'
                                % (section, key))

    # Every value in the file through oslo's type parsing.
    for section, values in sections.items():
        group = _normalize(section)
        if group not in known:
            continue
        for key in values:
            if key not in known[group]:
                continue
            try:
                if group == 'DEFAULT':
                    getattr(conf, key)
                else:
                    getattr(conf[group], key)
            except (cfg.ConfigFileValueError, ValueError) as e:
                problems.append('[%s] %s: %s' % (section, key, e))
            except cfg.NoSuchOptError:
                pass  # a deprecated alias: read through its new name

    result = {}
    for group, names in REPORT.items():
        result[group] = {}
        for name in names:
            try:
                result[group][name] = getattr(conf[group], name)
            except (cfg.ConfigFileValueError, ValueError) as e:
                result[group][name] = None
                msg = '[%s] %s: %s' % (group, name, e)
                if msg not in problems:
                    problems.append(msg)

    if args.expect_id_like:
        nd = result['neutron_defaults']
        for name in ('project', 'pod_subnet', 'service_subnet'):
            value = nd.get(name)
            if not value or not ID_RE.match(value):
                problems.append('[neutron_defaults] %s = %r does not look '
                                'like an OpenStack ID' % (name, value))
        sgs = nd.get('pod_security_groups') or []
        if not sgs:
            problems.append('[neutron_defaults] pod_security_groups is '
                            'empty')
        for sg in sgs:
            if not ID_RE.match(sg):
                problems.append('[neutron_defaults] pod_security_groups: '
                                '%r does not look like an OpenStack ID' % sg)

    print(json.dumps(result, indent=2, sort_keys=True))
    if problems:
        for p in problems:
            print('check_kuryr_conf: %s: %s' % (args.path, p),
                  file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""How long the local cloud's servers worked for one client in a window.

    access_busy.py [--agent PREFIX] NAME=LOG:START:END ...

Reads bytes START..END of each gunicorn access log that scripts/cloud/up.sh
writes (<state>/logs/<name>-access.log; tab-separated: start epoch s,
duration us, status, method, URI, bytes, pid, user agent), i.e. the lines
written between two offset marks, and prints one line of key=value pairs:

  <name>_ms=  <name>_n=   summed duration and count of the requests whose
                          user agent starts with PREFIX (default "kuryr6/"),
                          per server
  <name>_service=         that server's requests from the cloud's own
                          services working for the client: Octavia's network
                          driver creating and deleting its ports in Neutron
                          (user agent "octavia-")
  <name>_other=           that server's requests from other clients (its
                          peers' token checks at Keystone, or other users of
                          the cloud)
  busy_ms=  requests=      the sums over all servers
  union_ms=               the time at least one server was serving one of
                          those requests (overlaps merged)
  bad_n=                  lines that do not parse (an older log format)
  kind_<k>=               the counted requests by kind (`request_kind`):
                          auth, list, poll, create, tag, update, delete

Only the standard library; any python3 runs it.
"""
import sys

# The cloud's own services, as their clients name themselves.
SERVICE_AGENTS = ('octavia-',)


def request_kind(method, uri):
    """What one request was for, from its method and URI: `auth` (a
    Keystone token), `list` (a collection read), `poll` (one resource read:
    waiting for a load balancer, or a read-back), `create`, `tag` (Neutron's
    .../tags), `update` (any other PUT: updates, router interfaces, batch
    members), `delete`."""
    path = uri.split('?', 1)[0].rstrip('/')
    last = path.rsplit('/', 1)[-1]
    if '/auth/tokens' in path:
        return 'auth'
    if method == 'GET':
        # an item's path ends with its id (uuids and Neutron's ids hold '-')
        looks_like_id = len(last) >= 32 and all(c in '0123456789abcdef-' for c in last)
        return 'poll' if looks_like_id else 'list'
    if method == 'POST':
        return 'create'
    if method == 'DELETE':
        return 'delete'
    if '/tags' in path:
        return 'tag'
    return 'update'


KINDS = ('auth', 'list', 'poll', 'create', 'tag', 'update', 'delete')


def main(argv):
    agent = 'kuryr6/'
    args = argv[1:]
    if len(args) >= 2 and args[0] == '--agent':
        agent, args = args[1], args[2:]
    if not args:
        sys.stderr.write(__doc__)
        return 2
    out = []
    intervals = []
    kinds = dict.fromkeys(KINDS, 0)
    total_us = total_n = 0
    bad = 0
    for spec in args:
        try:
            name, rest = spec.split('=', 1)
            path, start, end = rest.rsplit(':', 2)
            start, end = int(start), int(end)
        except ValueError:
            sys.stderr.write('access_busy.py: bad argument %r: want '
                             'NAME=LOG:START:END\n' % spec)
            return 2
        data = b''
        if end > start:
            try:
                with open(path, 'rb') as f:
                    f.seek(start)
                    data = f.read(end - start)
            except OSError as e:
                sys.stderr.write('access_busy.py: %s\n' % e)
                return 1
        us = n = other = service = 0
        for line in data.decode('utf-8', 'replace').splitlines():
            fields = line.split('\t')
            try:
                t0, dur = float(fields[0]), int(fields[1])
                ua = fields[7]
            except (IndexError, ValueError):
                bad += 1
                continue
            if ua.startswith(SERVICE_AGENTS):
                service += 1
                continue
            if not ua.startswith(agent):
                other += 1
                continue
            us += dur
            n += 1
            try:
                kinds[request_kind(fields[3], fields[4])] += 1
            except IndexError:
                bad += 1
            intervals.append((t0, t0 + dur / 1e6))
        total_us += us
        total_n += n
        out.append('%s_ms=%.1f %s_n=%d %s_other=%d %s_service=%d'
                   % (name, us / 1e3, name, n, name, other, name, service))
    union = 0.0
    cur_start = cur_end = None
    for a, b in sorted(intervals):
        if cur_end is None or a > cur_end:
            if cur_end is not None:
                union += cur_end - cur_start
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    if cur_end is not None:
        union += cur_end - cur_start
    out.append('busy_ms=%.1f requests=%d union_ms=%.1f bad_n=%d'
               % (total_us / 1e3, total_n, union * 1e3, bad))
    out.extend('kind_%s=%d' % (k, kinds[k]) for k in KINDS)
    print(' '.join(out))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))

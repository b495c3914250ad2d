"""WSGI wrapper that stamps each request's start time for the access log.

gunicorn's access-log atoms give a request's duration but only a
second-resolution end time; the benchmark needs when each request started
(to cut a run's window and merge overlapping requests), so the wrappers
put it in the environ, which gunicorn's ``%({kuryr6.t0}e)s`` atom prints.
"""
import time


def stamped(app):
    def wrapper(environ, start_response):
        environ['kuryr6.t0'] = '%.6f' % time.time()
        return app(environ, start_response)
    return wrapper

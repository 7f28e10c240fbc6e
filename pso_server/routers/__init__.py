"""The HTTP API's routes, one :class:`fastapi.APIRouter` module per concern.

- :mod:`.auth`: sign-in, token refresh, sign-out
- :mod:`.reports`: the idempotent batch upload
- :mod:`.status`: the status feed, the lookup by id and the risk manager's status change
- :mod:`.facility`: the facility's reports and review records, for its risk managers
- :mod:`.reference`: units and form versions for the client's offline cache
- :mod:`.sealed`: the PSO's sealing key and the sealed upload with a device credential (the sealed outbox)
- :mod:`.operations`: ``/healthz`` for load balancers

What they share (the ``Problem`` error, the documented answers, the dependencies that give a route its
database, settings and signed-in account) is in :mod:`.deps`. :func:`pso_server.app.create_app` includes them
in this order, which is also the order of the OpenAPI document.
"""

from __future__ import annotations

from fastapi import APIRouter

from pso_server.routers import auth, facility, operations, reference, reports, sealed, status

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    reports.router,
    status.router,
    facility.router,
    reference.router,
    sealed.router,
    operations.router,
)

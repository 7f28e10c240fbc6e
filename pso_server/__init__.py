"""The reference PSO server for PSO Desktop: authenticated, idempotent batch intake over TLS.

Shares only :mod:`pso_desktop.domain` with the client. Entry points: the ``pso-server`` command
(:mod:`pso_server.cli`), the application factory :func:`pso_server.app.create_app` (its routes in
:mod:`pso_server.routers`), and
:func:`pso_server.practice.run_server` to run it in-process for training mode, tests and benchmarks.
See docs/server.md.
"""

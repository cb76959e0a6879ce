"""The harness that tests/ and bench/ share; never shipped (pyproject packages only `exporter*`).

It runs the real components as a user would: the exporter process (exporter_process, reliability), a real
Prometheus and promtool (prometheus_server, tools), the simulator's benchmark worlds and the per-collector
call count (bench_world, bench_calls, bench_proc), the static baseline server (static_server), load and
soak runs (soak_load), a hostile WHMCS stand-in and a slowloris (hostile_whmcs, slow_clients), a slow WHMCS on
a fake clock (slow_whmcs); and it fakes or makes what those need (fake_whmcs, in_process, exposition, tls_certs,
deploy_kit).
tests/ and bench/ import it; it imports neither.
"""

"""Collectors: each turns WHMCS API answers into one part of an installation's snapshot.

A collector is built once per installation (so it may keep a cache between polls),
and `poll(ctx)` makes a bounded number of API calls and returns an immutable
part that renders itself into metric families. Collectors raise `WhmcsError`s and
never catch what they cannot handle; the poller decides what a failure means.
Which collectors exist, and in which order a poll runs them, is said once, in
`registry.py`. A collector imports shared code (`base`, `ticket_lists`,
`ticket_replies`, `ticket_labels`, `staff_names`), never another collector's module: what it needs from an
earlier collector it reads from that collector's part on the poll context.
"""

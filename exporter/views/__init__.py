"""Views: each turns WHMCS API answers into one part of an installation's snapshot.

A view is built once per installation (so it may keep a cache between polls),
and `poll(ctx)` makes a bounded number of API calls and returns an immutable
part that renders itself into metric families. Views raise `WhmcsError`s and
never catch what they cannot handle; the poller decides what a failure means.
"""

"""What an admin should do about each WHMCS error: the advice in log lines and on the landing page."""

from __future__ import annotations

from exporter.errors import WhmcsError

_OUTPUT_BEFORE_ANSWER = (
    "something printed output before WHMCS's answer, so WHMCS failed with its error page: look for a hook "
    "or add-on that echoes or prints (includes/hooks, modules/addons; disable the newest first), a byte-order "
    "mark or blank lines before <?php or after ?> in a PHP file (configuration.php, hooks, language overrides), "
    "and PHP notices shown because display_errors is on (turn it off; the PHP error log names the file)")

_ADVICE = (
    ("output has been emitted", _OUTPUT_BEFORE_ANSWER),
    ("emitterexception", _OUTPUT_BEFORE_ANSWER),
    ("headers already sent", _OUTPUT_BEFORE_ANSWER),
    ("ip banned", "WHMCS banned this host's IP after failed logins. Fix the credentials first, then remove "
                  "the ban in WHMCS (Configuration > System Settings > Security: Banned IPs)"),
    ("invalid ip", "this host's IP is not on WHMCS's API IP allow-list: add it (Configuration > System "
                   "Settings > General Settings > Security > API IP Access Restriction) or set api_accesskey"),
    ("invalid access key", "api_accesskey does not match $api_access_key in WHMCS's configuration.php"),
    ("invalid or missing credentials", "check api_identifier/api_secret (Configuration > System Settings > "
                                       "Manage API Credentials)"),
    ("authentication failed", "check api_identifier/api_secret, or username/password for a legacy admin login"),
    ("invalid password", "legacy admin login: password must be the admin password (the exporter MD5-hashes it)"),
    ("invalid administrative identifier", "the API credential's admin user no longer exists; create new API "
                                          "credentials"),
    ("administrator account disabled", "the admin user behind the API credential is disabled in WHMCS"),
    ("invalid permissions", "the API role lacks this action: allow GetTicketCounts, GetTickets, GetTicket, "
                            "GetSupportDepartments and GetSupportStatuses (Manage API Credentials > API Roles)"),
    ("access denied", "the admin user lacks API access; check its role permissions"),
    ("unauthenticated", "the bearer token was refused: check token / OAuth2 client and user credentials"),
    ("invalid_grant", "the OAuth2 token endpoint refused the username/password or refresh token"),
    ("invalid_client", "the OAuth2 token endpoint refused client_id/client_secret"),
)


def advice(error: WhmcsError) -> str:
    """One clause telling the admin what to fix, or '' when there is nothing specific to say."""
    lowered = error.message.lower()
    for needle, text in _ADVICE:
        if needle in lowered:
            return text
    if error.reason == "auth":
        return "check the credentials and the API IP allow-list"
    if error.reason == "timeout":
        return "WHMCS answered too slowly: check its load, or raise timeout"
    if error.reason == "connection":
        return "check url and that this host can reach WHMCS"
    if error.reason == "invalid_response":
        return "WHMCS did not answer with JSON: maintenance page, firewall or broken installation?"
    return ""

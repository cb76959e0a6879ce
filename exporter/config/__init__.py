"""Configuration: the YAML file or WHMCS_* environment variables -> validated, frozen dataclasses.

Each setting is declared once (`installation.py`, the login keys in `auth.py`); parsing, the known-keys check,
`--config.check` and the reference in docs/configuration.md (`python -m exporter.config --reference`) follow.
"""

from exporter.config.auth import API_STYLES, AdminLogin, ApiCredentials, Auth, BearerToken, OAuth2Login
from exporter.config.durations import DEFAULT_BUCKETS, format_duration, parse_duration
from exporter.config.installation import SETTINGS, Config, InstallationConfig
from exporter.config.kinds import registered_collectors
from exporter.config.loading import installation_from_env, load, parse, read_yaml
from exporter.config.problems import ConfigError
from exporter.config.secret import Secret, credentials_digest

__all__ = [
    "API_STYLES", "DEFAULT_BUCKETS", "SETTINGS", "AdminLogin", "ApiCredentials", "Auth", "BearerToken", "Config",
    "ConfigError", "InstallationConfig", "OAuth2Login", "Secret", "credentials_digest", "format_duration",
    "installation_from_env", "load", "parse", "parse_duration", "read_yaml", "registered_collectors",
]

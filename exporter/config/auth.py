"""How an installation logs in: one frozen object per login WHMCS (or a WHMCS-compatible gateway) accepts.

`api_style: whmcs` takes API credentials or the legacy admin login, each with an optional access key;
`api_style: bearer` takes a static token or an OAuth2 password grant. Each login checks that it has what it
needs (`from_values`) and says which config keys it holds (`settings`), so `--config.check` can show them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from exporter.config.kinds import Choice, SecretText, Text, TextOrFile
from exporter.config.secret import Secret
from exporter.config.settings import Setting

API_STYLES = ("whmcs", "bearer")

# The auth keys, in the order the configuration reference lists them. Which of them a login needs is said by
# the login classes below.
AUTH_SETTINGS = (
    Setting("api_style", Choice(API_STYLES), "whmcs",
            "`whmcs`: `includes/api.php` with credentials in the form; `bearer`: gateways with OAuth2 tokens"),
    Setting("api_identifier", SecretText(), help="API credentials (WHMCS 7.2+), with api_secret",
            env="WHMCS_API_IDENTIFIER"),
    Setting("api_secret", SecretText(), help="API credentials, with api_identifier", env="WHMCS_API_SECRET"),
    Setting("username", TextOrFile(), env="WHMCS_USERNAME",
            help="admin login name: legacy login (`whmcs`) or OAuth2 password grant (`bearer`)"),
    Setting("password", SecretText(), env="WHMCS_PASSWORD",
            help="admin password (`whmcs` style sends its MD5; a 32-hex value is taken as an MD5 already)"),
    Setting("api_accesskey", SecretText(), env="WHMCS_API_ACCESSKEY",
            help="`$api_access_key` of configuration.php: lets the exporter in without an IP allow-list entry"),
    Setting("token", SecretText(), help="`bearer`: a static bearer token"),
    Setting("token_url", Text(), help="`bearer`: OAuth2 token endpoint (password grant)"),
    Setting("client_id", Text(), help="`bearer`: OAuth2 client id, with token_url"),
    Setting("client_secret", SecretText(), help="`bearer`: OAuth2 client secret, with token_url (optional)"),
)


def config_key(key: str, **details: Any) -> Any:
    """A login's field set by a config key of another name (`identifier` by `api_identifier`)."""
    return field(metadata={"key": key}, **details)


class Login:
    """A way to log in. Its dataclass fields are the config keys it holds: those without a default it needs.
    A subclass says its style, how messages name it and which keys mean the user chose it (default: the needed)."""

    style: ClassVar[str]
    described_as: ClassVar[str]  # how a problem names it: "api_secret: required with API credentials"
    _named_as: ClassVar[str]  # how a conflict names it: "set either api_identifier/api_secret or ..."
    _chosen_by: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, *, style: str, described_as: str, named_as: str = "",
                          chosen_by: tuple[str, ...] = ()) -> None:
        cls.style, cls.described_as, cls._named_as, cls._chosen_by = style, described_as, named_as, chosen_by

    @classmethod
    def keys(cls) -> dict[str, str]:
        """Config key -> attribute."""
        return {f.metadata.get("key", f.name): f.name for f in fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def needed(cls) -> tuple[str, ...]:
        return tuple(f.metadata.get("key", f.name) for f in fields(cls)  # type: ignore[arg-type]
                     if f.default is MISSING and f.default_factory is MISSING)

    @classmethod
    def chosen_by_keys(cls) -> tuple[str, ...]:
        return cls._chosen_by or cls.needed()

    @classmethod
    def name(cls) -> str:
        return cls._named_as or "/".join(cls.needed())

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: str, problems: list[str],
                    invalid: Collection[str] = ()) -> Any:
        """The login from validated config values, or None after adding what is missing to `problems`
        (keys in `invalid` were given but are wrong: already reported, not missing)."""
        missing = [key for key in cls.needed() if key not in values and key not in invalid]
        problems += [f"{where}.{key}: required with {cls.described_as}" for key in missing]
        if missing or any(key in invalid for key in cls.keys()):
            return None
        return cls(**{attr: values[key] for key, attr in cls.keys().items() if key in values})

    def settings(self) -> dict[str, Any]:
        """The config keys this login holds, with their values (Secrets stay Secrets)."""
        held = {key: getattr(self, attr) for key, attr in self.keys().items()}
        return {"api_style": self.style, **{key: value for key, value in held.items() if value is not None}}

    def secrets(self) -> list[Secret]:
        """Every credential it holds: their values must never appear in a message."""
        return [value for value in self.settings().values() if isinstance(value, Secret)]


@dataclass(frozen=True)
class ApiCredentials(Login, style="whmcs", described_as="API credentials"):
    """API credentials (WHMCS 7.2+), the way WHMCS recommends."""

    identifier: Secret = config_key("api_identifier")
    secret: Secret = config_key("api_secret")
    accesskey: Secret | None = config_key("api_accesskey", default=None)


@dataclass(frozen=True)
class AdminLogin(Login, style="whmcs", described_as="admin login"):
    """The legacy admin login (WHMCS gets the password's MD5)."""

    username: str
    password: Secret
    accesskey: Secret | None = config_key("api_accesskey", default=None)


@dataclass(frozen=True)
class BearerToken(Login, style="bearer", described_as="a static token", named_as="token/token_file"):
    """A static bearer token (a file is re-read on every call, so a rotated token needs no restart)."""

    token: Secret


@dataclass(frozen=True)
class OAuth2Login(Login, style="bearer", described_as="token_url (OAuth2 password grant)",
                  named_as="token_url (OAuth2)", chosen_by=("token_url",)):
    """The OAuth2 password grant: tokens from `token_url`, refreshed before they expire."""

    token_url: str
    client_id: str
    username: str
    password: Secret
    client_secret: Secret | None = None


Auth = ApiCredentials | AdminLogin | BearerToken | OAuth2Login


@dataclass(frozen=True)
class AuthStyle:
    logins: tuple[type[Login], ...]
    none_given: str


STYLES = {
    "whmcs": AuthStyle((ApiCredentials, AdminLogin), "credentials required: api_identifier + api_secret "
                                                     "(or username + password), inline or as *_file"),
    "bearer": AuthStyle((BearerToken, OAuth2Login),
                        "bearer style needs token/token_file or token_url with OAuth2 credentials"),
}


def build_auth(values: Mapping[str, Any], where: str, problems: list[str],
               invalid: Collection[str] = ()) -> Auth | None:
    """The one login the values describe in their `api_style`, or None after saying what is wrong.
    Keys in `invalid` were given with a wrong value (reported already): they still say which login was meant."""
    style = STYLES[values.get("api_style", "whmcs")]
    given = set(values) | set(invalid)
    chosen = [login for login in style.logins if any(key in given for key in login.chosen_by_keys())]
    if len(chosen) > 1:
        problems.append(f"{where}: set either {chosen[0].name()} or {chosen[1].name()}, not both")
        return None
    if not chosen:
        problems.append(f"{where}: {style.none_given}")
        return None
    return chosen[0].from_values(values, where, problems, invalid)

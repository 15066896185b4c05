"""Configuration read from the environment, validated once at start-up.

Every process calls :meth:`Settings.from_env` before doing anything else. A missing or malformed
variable raises :class:`ConfigError` naming it; entry points print that message and exit non-zero
instead of failing later, deep inside a request.

The package, one module per concern (every name is importable from here, as before):

- :mod:`.constants`: the environments, the defaults, the development secrets, the schemes;
- :mod:`.parsing`: :class:`ConfigError` and the helpers every area reads variables with;
- :mod:`.model`: the :class:`Settings` dataclass and :meth:`Settings.from_env`;
- :mod:`.operations`: the database and Redis, the numbers, retention, pooler, tracing, console;
- :mod:`.security`: tokens (JWT, JWKS, issuers), CORS, the webhook's key, unsubscribe links;
- :mod:`.providers`: SendGrid, SMTP, Twilio and OpenAI;
- :mod:`.loading`: :func:`load_or_exit` and :func:`exit_on_config_error`, for entry points.
"""

# What the services, the tests and the benches read of the settings; the rest of the defaults
# and limits stay in :mod:`.constants`.
from tribe_shared.settings.constants import (
    DEFAULT_JOB_LEASE_SECONDS,
    DEFAULT_PORT,
    DEV_JWT_SECRET,
    DEV_UNSUBSCRIBE_SECRET,
    SUPABASE_API_KEY_ISSUER,
)
from tribe_shared.settings.loading import exit_on_config_error, load_or_exit
from tribe_shared.settings.model import Settings
from tribe_shared.settings.parsing import ConfigError

__all__ = [
    "DEFAULT_JOB_LEASE_SECONDS",
    "DEFAULT_PORT",
    "DEV_JWT_SECRET",
    "DEV_UNSUBSCRIBE_SECRET",
    "SUPABASE_API_KEY_ISSUER",
    "ConfigError",
    "Settings",
    "exit_on_config_error",
    "load_or_exit",
]

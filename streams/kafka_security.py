"""How every Kafka client of Nudge authenticates (SASL) and encrypts (TLS).

The worker reaches Kafka through Faust (aiokafka underneath); topic creation
and the publishing commands through kafka-python. Each library wants the same
settings in its own shape, so both shapes are built here from one
:class:`~streams.settings.Settings`, and they cannot drift apart: the same
mechanism, the same credentials, and an :class:`ssl.SSLContext` built the same
way (certificates verified, host names checked).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiokafka import errors as aiokafka_errors
from aiokafka.conn import create_conn

from streams.settings import InvalidSettingsError, Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = ["broker_credentials", "kafka_python_options", "refusal", "ssl_context"]


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """Build the TLS context for ``SSL`` and ``SASL_SSL``; None when Kafka is not over TLS.

    The brokers' certificates are verified against ``NUDGE_KAFKA_SSL_CAFILE``
    (the system's CAs when unset) and must name the host connected to. A file
    that exists but cannot be used stops start-up naming its setting.
    """
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    cafile = settings.kafka_ssl_cafile
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=None if cafile is None else str(cafile)
        )
    except OSError as exc:  # ssl.SSLError included
        raise _unusable(
            "NUDGE_KAFKA_SSL_CAFILE", "holds no usable PEM CA certificate", exc
        ) from None
    if settings.kafka_ssl_certfile is not None:
        key_password = settings.kafka_ssl_key_password
        try:
            context.load_cert_chain(
                str(settings.kafka_ssl_certfile),
                None if settings.kafka_ssl_keyfile is None else str(settings.kafka_ssl_keyfile),
                password=None if key_password is None else key_password.get_secret_value(),
            )
        except OSError as exc:
            raise _unusable(
                "NUDGE_KAFKA_SSL_CERTFILE",
                "and its key (NUDGE_KAFKA_SSL_KEYFILE, NUDGE_KAFKA_SSL_KEY_PASSWORD) "
                "do not load as a PEM certificate and matching private key",
                exc,
            ) from None
    return context


def _unusable(variable: str, problem: str, exc: OSError) -> InvalidSettingsError:
    # OpenSSL's reason (e.g. "PEM_LIB") or the OS error; never a password.
    reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
    return InvalidSettingsError(
        f"Nudge cannot start: invalid settings\n  {variable} {problem} ({reason})"
    )


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments that make a kafka-python client connect as settings say.

    For ``KafkaAdminClient`` and ``KafkaProducer`` alike.

    >>> from streams.settings import Settings
    >>> kafka_python_options(Settings())
    {'security_protocol': 'PLAINTEXT'}
    """
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        options |= _sasl(settings)
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    return options


_REFUSALS = (
    ssl.SSLError,
    aiokafka_errors.SaslAuthenticationFailed,
    aiokafka_errors.UnsupportedSaslMechanismError,
    aiokafka_errors.IllegalSaslStateError,
    aiokafka_errors.AuthenticationFailedError,
    aiokafka_errors.AuthenticationMethodNotSupported,
)
"""What a broker answers to credentials or certificates it will never accept."""


def refusal(
    bootstrap_servers: str, options: Mapping[str, Any], *, timeout: float = 10.0
) -> str | None:
    """Connect once to the first broker; return why it refused ``options``, if it did.

    ``options`` are :func:`kafka_python_options`, whose names aiokafka shares.
    kafka-python, which creates the topics, retries a refused login until
    its bootstrap timeout, then says only that it could not bootstrap (and,
    racing the broker's hang-up, often does not even log why). aiokafka
    authenticates as soon as it connects and reports the broker's answer,
    so one connection tells at once. Anything else (nothing listening yet, a
    timeout) is not a refusal: retrying may help, and the caller retries.
    Call it from a thread with no running event loop.
    """
    if options.get("security_protocol", "PLAINTEXT") == "PLAINTEXT":
        return None
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")

    async def connect() -> None:
        connection = await create_conn(
            host, int(port), request_timeout_ms=int(timeout * 1000), **options
        )
        await connection.close()  # the socket, not only the Kafka connection

    try:
        asyncio.run(connect())
    except _REFUSALS as exc:
        return f"{type(exc).__name__}: {exc}"
    except (OSError, aiokafka_errors.KafkaError, TimeoutError):
        return None
    return None


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials``: SASL (over TLS or not), TLS alone, or None.

    Faust hands them to every aiokafka client it makes: the consumer, the
    producers, and the clients that create its changelog topics.
    """
    # Imported here, not at the top: kafka-python users of this module (topic
    # creation, the publishing commands, unit tests) need not load Faust.
    from faust.auth import SASLCredentials, SSLCredentials

    context = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        sasl = _sasl(settings)
        return SASLCredentials(
            username=sasl["sasl_plain_username"],
            password=sasl["sasl_plain_password"],
            mechanism=sasl["sasl_mechanism"],
            ssl_context=context,
        )
    if context is not None:
        return SSLCredentials(context)
    return None


def _sasl(settings: Settings) -> dict[str, str]:
    # Settings validation guarantees both are set whenever the protocol is SASL_*.
    assert settings.kafka_sasl_username is not None
    assert settings.kafka_sasl_password is not None
    return {
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
    }

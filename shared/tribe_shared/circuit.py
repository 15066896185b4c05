"""The email circuit breaker's state, as the workers keep it in Redis and anyone may read it.

The workers move the circuit (``tribe_worker.circuit``: each transition one Lua script on the
hash below); the API only reads it, for ``/api/health/redis`` and ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitStatus:
    state: CircuitState
    consecutive_failures: int
    opened_at: float | None
    reopens_at: float | None

    def as_dict(self) -> dict:
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "opened_at": self.opened_at,
            "reopens_at": self.reopens_at,
        }

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> CircuitStatus:
        """The status stored in the breaker's Redis hash (an empty hash is a closed circuit)."""
        state = CircuitState(raw.get("state", "closed"))
        is_open = state != CircuitState.CLOSED
        return cls(
            state=state,
            consecutive_failures=int(raw.get("failures", 0)),
            opened_at=float(raw["opened_at"]) if is_open else None,
            reopens_at=float(raw["reopens_at"]) if is_open else None,
        )


#: What a deployment without Redis reports: the development stand-in never opens.
CLOSED = CircuitStatus(CircuitState.CLOSED, 0, None, None)


def email_circuit_key(namespace: str) -> str:
    """The Redis hash of the email provider's breaker: ``state``, ``failures``,
    ``opened_at``, ``reopens_at`` and ``probe_until`` (readers may ``HGETALL`` it)."""
    return f"{namespace}:circuit:email"


def sms_circuit_key(namespace: str) -> str:
    """The Redis hash of the SMS/WhatsApp provider's (Twilio's) breaker, kept like the email
    provider's: Twilio being down never pauses email, nor SendGrid being down text messages."""
    return f"{namespace}:circuit:sms"

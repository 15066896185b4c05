"""What text messages say (an update, a digest, a system message) and how many SMS segments
they take.

An SMS is 140 bytes. Text that fits the GSM 03.38 alphabet (GSM-7) takes 7 bits a character:
160 characters in one segment, 153 a segment once it is split (the rest carries the
concatenation header); a character of the extension table (``€ [ ] { } ~ ^ | \\``) takes two.
Anything else (an emoji, most non-Latin scripts, even one curly quote) makes the whole message
UCS-2: 70 UTF-16 code units in one segment, 67 once split, and an emoji outside the Basic
Multilingual Plane is two of them. Carriers bill per segment and long messages arrive out of
order on some phones, so every text is kept within :data:`MAX_SEGMENTS` segments: the body is
cut (with "…") to fit, never the heading or the opt-out line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The GSM 03.38 basic character set (one septet each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: an escape septet and the character, two septets each.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
#: A text message is cut to fit this many segments.
MAX_SEGMENTS = 3
#: Carriers and Twilio require an opt-out instruction in marketing-like SMS; ours say it.
OPT_OUT = "Reply STOP to stop these texts."
ELLIPSIS = "…"


@dataclass(frozen=True)
class Segments:
    """How a text travels: its encoding, its length in that encoding's units, its segments."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int
    count: int


def count_segments(text: str) -> Segments:
    """The SMS segments ``text`` takes (see the module's docstring for the rules)."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        single, split, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, split, encoding = 70, 67, "UCS-2"
    count = 1 if units <= single else math.ceil(units / split)
    return Segments(encoding, units, count)


def fit(head: str, body: str, tail: str = "", *, segments: int = MAX_SEGMENTS) -> str:
    """``head``, ``body`` and ``tail`` on their lines, the body cut (with "…") so the whole
    takes at most ``segments`` segments."""

    def join(middle: str) -> str:
        return "\n".join(part for part in (head, middle, tail) if part)

    text = join(body)
    if count_segments(text).count <= segments:
        return text
    low, high = 0, len(body)  # the longest prefix that fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if count_segments(join(body[:middle].rstrip() + ELLIPSIS)).count <= segments:
            low = middle
        else:
            high = middle - 1
    return join(body[:low].rstrip() + ELLIPSIS if low else "")


def update_text(content: dict, family: str | None, *, channel: str = "sms") -> str:
    """An update (or a notification's content): who it is from, its title, its text."""
    if content.get("text"):
        return fit("", str(content["text"]), _opt_out(channel))
    title = content.get("title")
    sender = family or "Tribe"
    head = f"{sender}: {title}" if title else f"New from {sender}"
    return fit(head, str(content.get("body") or ""), _opt_out(channel))


def digest_text(heading: str, group_name: str, updates: list[dict], more: int, *, channel) -> str:
    """A digest: its heading, one line per update (newest first), how many more there are."""
    head = f"{heading} from {group_name}" if group_name else heading
    lines = [
        f"• {u['title']}: {u['body']}" if u.get("title") and u.get("body")
        else f"• {u.get('title') or u.get('body') or u.get('content_type', 'update')}"
        for u in updates
    ]  # fmt: skip
    if more:
        lines.append(f"…and {more} more in the Tribe app")
    return fit(head, "\n".join(lines), _opt_out(channel))


def system_text(template_data: dict, subject: str | None = None) -> str:
    """A system message: its ``message`` (else its subject)."""
    message = template_data.get("message") or template_data.get("body") or subject or ""
    return fit("", str(message))


def _opt_out(channel: str) -> str:
    # WhatsApp users block a business in the app; the STOP line is an SMS convention.
    return OPT_OUT if channel == "sms" else ""

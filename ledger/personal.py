"""Personal data of an order (ship-to and notes), sealed so that the ledger never holds it in clear.

An order may carry its ship-to (`ship_to`: name, address lines, city,
postcode, region, country, phone, e-mail) and the customer's `notes`. Before
a tx is signed, the sender seals them (`seal_personal`): the plaintext is the
canonical encoding of `{"notes", "salt", "ship_to"}` with 16 random bytes of
salt; a fresh 32-byte data key encrypts it with ChaCha20-Poly1305; the data
key is wrapped to each reader organisation's X25519 public key (an ephemeral
X25519 key pair per wrap, HKDF-SHA256 over the shared secret, both public
keys in the HKDF info, ChaCha20-Poly1305 with the commitment as associated
data). The ledger keeps the ciphertext, the wrapped keys and the commitment
(sha256 of the plaintext: salted, so it cannot be reversed by guessing an
address, and it binds every wrapped key to this one plaintext).

What a sealed record holds on the wire (every byte string in lowercase hex):

    {"scheme": "x25519-chacha20poly1305/1",
     "commitment": sha256(plaintext),
     "ciphertext": nonce (12 bytes) || ChaCha20-Poly1305(data key, nonce, plaintext, AAD_DATA),
     "keys": [{"org": ORG, "ephemeral": X25519 public key (32 bytes),
               "wrapped": ChaCha20-Poly1305(KEK, zero nonce, data key, commitment) (48 bytes)}]}

with KEK = HKDF-SHA256(X25519(ephemeral, org key), info = WRAP_INFO || ephemeral || org key). A zero nonce
is safe there because every KEK is used once (its ephemeral key is fresh).

An organisation reads an order's personal data with its private key
(`EncryptionKey`, in each of its nodes' homes only) by unwrapping its data
key (`unwrap_key`) and decrypting (`open_personal`), which checks the
commitment. Another organisation is given the data key by a grant: a wrap of
the same key to its public key (`wrap_key`), sent by a node that could unwrap
it. Destroying every wrapped key of an order (erasure) leaves the ciphertext
unreadable while every block still hashes as it did.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.encoding import decode, encode
from ledger.errors import InvalidTransaction, LedgerError

SCHEME = "x25519-chacha20poly1305/1"
"""The name of this sealing scheme, carried by every sealed record."""

AAD_DATA = b"oms-ledger personal data/1"
"""Associated data of the data encryption."""

WRAP_INFO = b"oms-ledger personal key wrap/1"
"""HKDF info prefix of a key-encryption key."""

KEY_SIZE = 32
"""Bytes of a data key, an X25519 key and a commitment."""

NONCE_SIZE = 12
"""Bytes of a ChaCha20-Poly1305 nonce."""

TAG_SIZE = 16
"""Bytes of a ChaCha20-Poly1305 tag."""

SALT_SIZE = 16
"""Bytes of salt in the plaintext."""

WRAPPED_SIZE = KEY_SIZE + TAG_SIZE
"""Bytes of a wrapped data key."""

MAX_CIPHERTEXT = 8 * 1024
"""Most bytes of a sealed plaintext with its nonce and tag (the bounds below fit in well under it)."""

MAX_READERS = 8
"""Most wrapped keys a sealed record carries when it is sent (grants add more on the ledger)."""

SHIP_TO_TEXT = {"name": 128, "city": 64, "postcode": 16, "region": 64, "phone": 32, "email": 254}
"""Longest value of each free-text ship-to field."""

SHIP_TO_KEYS = ("name", "address_lines", "city", "postcode", "region", "country", "phone", "email")
"""Exactly the keys a ship-to may hold."""

SHIP_TO_REQUIRED = ("name", "address_lines", "city", "country")
"""The keys a ship-to must hold (the others may be absent or null)."""

MAX_ADDRESS_LINES = 4
"""Most address lines."""

MAX_ADDRESS_LINE = 128
"""Longest address line."""

MAX_NOTES = 1000
"""Longest customer notes."""

COUNTRY_CODES = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY "
    "BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK "
    "FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR "
    "IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK "
    "ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF "
    "TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
)
"""ISO 3166-1 alpha-2 country codes (officially assigned), separated by spaces."""

COUNTRIES = frozenset(COUNTRY_CODES.split())
"""The country codes a ship-to may name."""

EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}")
"""A plausible e-mail address: one `@`, no spaces."""

COARSE_MICRO_DEGREES = 10_000
"""Delivery coordinates leave the sender rounded to this many micro-degrees (0.01 degree: about 1.1 km of
latitude, and less of longitude): enough for allocation to weigh distances, too coarse to point at a door."""

ENCRYPTION_KEY_FILE = "encryption_key"
"""The file in a node's home holding its organisation's X25519 private key (owner-only)."""


class InvalidPersonalData(InvalidTransaction):
    """A ship-to or notes that do not fit their declared shape."""

    code = "bad_personal_data"


class UnreadablePersonalData(LedgerError):
    """A sealed record this key cannot open: not wrapped to it, tampered with, or of another plaintext."""

    code = "unreadable_personal_data"


class NoEncryptionKey(LedgerError):
    """The organisation has no encryption key: personal data cannot be sealed to it."""

    code = "no_encryption_key"


class ShipTo(TypedDict):
    """Where an order goes and whom to reach."""

    name: str
    address_lines: list[str]
    city: str
    postcode: str | None
    region: str | None
    country: str
    """ISO 3166-1 alpha-2, upper case."""
    phone: str | None
    email: str | None


class PersonalData(TypedDict):
    """An order's personal data in clear (either part may be absent: None)."""

    ship_to: ShipTo | None
    notes: str | None


class WrappedKey(TypedDict):
    """An order's data key wrapped to one organisation's X25519 key (hex on the wire)."""

    org: str
    ephemeral: str
    wrapped: str


class Sealed(TypedDict):
    """An order's personal data as the ledger holds it (see the module docstring)."""

    scheme: str
    commitment: str
    ciphertext: str
    keys: list[WrappedKey]


def check_personal(ship_to: Any, notes: Any) -> PersonalData:
    """The ship-to and notes, checked: no key but the ship-to keys, `name`, `address_lines`, `city` and
    `country` present, each a bounded string (address lines a list of 1-4), an ISO country code, a plausible
    e-mail; notes a string of at most `MAX_NOTES` characters. `InvalidPersonalData` naming the field otherwise.
    An absent optional field reads as None."""
    if notes is not None and (type(notes) is not str or len(notes) > MAX_NOTES):
        raise InvalidPersonalData(f"notes must be a string of at most {MAX_NOTES} characters")
    if ship_to is None:
        return PersonalData(ship_to=None, notes=notes)
    if type(ship_to) is not dict:
        raise InvalidPersonalData("ship_to must be a map")
    for key in ship_to:
        if key not in SHIP_TO_KEYS:
            raise InvalidPersonalData(f"ship_to.{key} is not a field of a ship-to; its fields are {SHIP_TO_KEYS}")
    for key in SHIP_TO_REQUIRED:
        if ship_to.get(key) is None:
            raise InvalidPersonalData(f"ship_to.{key} is required")
    for key, longest in SHIP_TO_TEXT.items():
        value = ship_to.get(key)
        if value is not None and (type(value) is not str or not 0 < len(value) <= longest):
            raise InvalidPersonalData(f"ship_to.{key} must be a string of 1-{longest} characters")
    lines = ship_to["address_lines"]
    if (
        type(lines) is not list
        or not 0 < len(lines) <= MAX_ADDRESS_LINES
        or any(type(line) is not str or not 0 < len(line) <= MAX_ADDRESS_LINE for line in lines)
    ):
        raise InvalidPersonalData(
            f"ship_to.address_lines must be a list of 1-{MAX_ADDRESS_LINES} strings of 1-{MAX_ADDRESS_LINE} characters"
        )
    if ship_to["country"] not in COUNTRIES:
        raise InvalidPersonalData("ship_to.country must be an ISO 3166-1 alpha-2 code such as NL or PT")
    email = ship_to.get("email")
    if email is not None and not EMAIL.fullmatch(email):
        raise InvalidPersonalData("ship_to.email must be an e-mail address")
    checked: Any = {key: ship_to.get(key) for key in SHIP_TO_KEYS}
    return PersonalData(ship_to=checked, notes=notes)


class EncryptionKey:
    """An organisation's X25519 private key: it unwraps the data keys of the orders its organisation may read."""

    __slots__ = ("_private", "public")

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private
        self.public: bytes = private.public_key().public_bytes_raw()
        """The raw 32-byte public key, as genesis and the membership name it."""

    @classmethod
    def generate(cls) -> EncryptionKey:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_seed_text(cls, text: str) -> EncryptionKey:
        """A deterministic key for tests and devnets (never for production)."""
        return cls(X25519PrivateKey.from_private_bytes(hashlib.sha256(text.encode()).digest()))

    def save(self, path: Path) -> None:
        """Write the raw private key in hex to a new file readable only by its owner."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self._private.private_bytes_raw().hex() + "\n")

    @classmethod
    def load(cls, path: Path) -> EncryptionKey:
        raw = bytes.fromhex(Path(path).read_text().strip())
        if len(raw) != KEY_SIZE:
            raise ValueError(f"{path} does not hold an X25519 private key")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    def exchange(self, peer: bytes) -> bytes:
        return self._private.exchange(X25519PublicKey.from_public_bytes(peer))


def _derive_kek(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=WRAP_INFO + ephemeral + recipient)
    return hkdf.derive(shared)


Random = Callable[[int], bytes]
"""A source of n secret random bytes (`os.urandom`, or a seeded stream: `seeded_random`)."""


def seeded_random(seed: bytes) -> Random:
    """A stream of bytes drawn from a secret `seed` (HKDF-SHA256 expansion of it, in order): sealing the same
    data again with the same seed gives the same record, so a retried request signs the same tx."""
    drawn = 0

    def draw(n: int) -> bytes:
        nonlocal drawn
        hkdf = HKDF(algorithm=hashes.SHA256(), length=drawn + n, salt=None, info=b"oms-ledger seal stream/1")
        out = hkdf.derive(seed)[drawn:]
        drawn += n
        return out

    return draw


def wrap_key(data_key: bytes, commitment: bytes, org: str, recipient: bytes, random: Random = os.urandom) -> WrappedKey:
    """`data_key` wrapped to the X25519 public key `recipient` of `org`, bound to `commitment`."""
    ephemeral = X25519PrivateKey.from_private_bytes(random(KEY_SIZE))
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    kek = _derive_kek(ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient)), ephemeral_public, recipient)
    wrapped = ChaCha20Poly1305(kek).encrypt(bytes(NONCE_SIZE), data_key, commitment)
    return WrappedKey(org=org, ephemeral=ephemeral_public.hex(), wrapped=wrapped.hex())


def unwrap_key(entry: WrappedKey, commitment: bytes, key: EncryptionKey) -> bytes:
    """The data key `entry` wraps to `key`; `UnreadablePersonalData` if it is not wrapped to it or was altered."""
    try:
        ephemeral = bytes.fromhex(entry["ephemeral"])
        kek = _derive_kek(key.exchange(ephemeral), ephemeral, key.public)
        return ChaCha20Poly1305(kek).decrypt(bytes(NONCE_SIZE), bytes.fromhex(entry["wrapped"]), commitment)
    except (InvalidTag, ValueError) as exc:
        raise UnreadablePersonalData(f"the key wrapped to {entry['org']} does not open with this key") from exc


def seal_personal(data: PersonalData, readers: dict[str, bytes], random: Random = os.urandom) -> Sealed:
    """`data` sealed under a fresh data key wrapped to each reader organisation (org -> X25519 public key); salt,
    keys and nonce drawn from `random`."""
    if not 0 < len(readers) <= MAX_READERS:
        raise InvalidPersonalData(f"personal data is sealed to 1-{MAX_READERS} organisations")
    plaintext = encode({"notes": data["notes"], "salt": random(SALT_SIZE), "ship_to": data["ship_to"]})
    commitment = hashlib.sha256(plaintext).digest()
    data_key = random(KEY_SIZE)
    nonce = random(NONCE_SIZE)
    ciphertext = nonce + ChaCha20Poly1305(data_key).encrypt(nonce, plaintext, AAD_DATA)
    if len(ciphertext) > MAX_CIPHERTEXT:
        raise InvalidPersonalData(f"personal data takes {len(ciphertext)} bytes sealed; at most {MAX_CIPHERTEXT}")
    return Sealed(
        scheme=SCHEME,
        commitment=commitment.hex(),
        ciphertext=ciphertext.hex(),
        keys=[wrap_key(data_key, commitment, org, readers[org], random) for org in sorted(readers)],
    )


def open_personal(ciphertext: str, commitment: str, data_key: bytes) -> PersonalData:
    """The personal data `ciphertext` (hex) holds under `data_key`, checked against `commitment` (hex)."""
    raw = bytes.fromhex(ciphertext)
    try:
        plaintext = ChaCha20Poly1305(data_key).decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], AAD_DATA)
    except InvalidTag as exc:
        raise UnreadablePersonalData("the ciphertext does not open with this data key") from exc
    if hashlib.sha256(plaintext).hexdigest() != commitment:
        raise UnreadablePersonalData("the plaintext does not match its commitment")
    value = decode(plaintext)
    return PersonalData(ship_to=value["ship_to"], notes=value["notes"])


def coarsen(micro_degrees: int) -> int:
    """A coordinate rounded to the nearest `COARSE_MICRO_DEGREES` (half away from zero)."""
    sign = -1 if micro_degrees < 0 else 1
    return sign * ((abs(micro_degrees) + COARSE_MICRO_DEGREES // 2) // COARSE_MICRO_DEGREES * COARSE_MICRO_DEGREES)


def seal_order_fields(
    payload: dict[str, Any], org: str, public: bytes | None, random: Random = os.urandom
) -> dict[str, Any]:
    """An order payload as it may leave its sender: its clear `ship_to` and `notes` (if it has any) replaced by
    `personal`, them sealed to `org`, whose X25519 public key is `public`; its delivery coordinates coarsened."""
    ship_to, notes = payload.get("ship_to"), payload.get("notes")
    rest = {name: value for name, value in payload.items() if name not in ("ship_to", "notes")}
    delivery = rest.get("delivery")
    if isinstance(delivery, dict):
        rest["delivery"] = {
            name: coarsen(value) if name in ("lat", "lon") and type(value) is int else value
            for name, value in delivery.items()
        }
    if ship_to is None and notes is None:
        return rest
    data = check_personal(ship_to, notes)
    if public is None:
        raise NoEncryptionKey(f"organisation {org} has no encryption key: its orders cannot carry ship_to or notes")
    return {**rest, "personal": dict(seal_personal(data, {org: public}, random))}

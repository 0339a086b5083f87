"""The py_webauthn calls ``bot.passkeys`` makes, in a module of their own so that they load on first use.

py_webauthn brings cryptography, pyOpenSSL, cbor2 and pyasn1: about 15 MB resident and 0.13 s
of import (measured with the bot's other libraries already loaded). A venue whose officers sign
in with passwords never needs them, and the first passkey request loads them in a thread
(``Passkeys.ready``) instead of stalling the event loop, and with it every video stream.
"""

from __future__ import annotations

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_client_data_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

__all__ = [
    "AuthenticatorSelectionCriteria",
    "PublicKeyCredentialDescriptor",
    "ResidentKeyRequirement",
    "UserVerificationRequirement",
    "WebAuthnException",
    "base64url_to_bytes",
    "bytes_to_base64url",
    "generate_authentication_options",
    "generate_registration_options",
    "options_to_json",
    "parse_authentication_credential_json",
    "parse_client_data_json",
    "verify_authentication_response",
    "verify_registration_response",
]

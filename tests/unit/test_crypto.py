import base64
import os

import pytest

from services.common.crypto import Cipher
from services.common.settings import SettingsError


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_seal_and_open_text_and_bytes():
    c = Cipher.from_settings(f"k1:{key()}", "k1")
    sealed = c.seal_text("héllo", "msg-1")
    assert sealed.startswith("enc:v1:k1:") and "héllo" not in sealed
    assert c.seal_text("héllo", "msg-1") != sealed  # fresh nonce every time
    assert c.open_text(sealed, "msg-1") == "héllo"
    blob = c.seal_bytes(b"\x00\x01secret", "file-1")
    assert b"secret" not in blob and c.open_bytes(blob, "file-1") == b"\x00\x01secret"


def test_ciphertext_is_bound_to_its_id_and_tampering_is_detected():
    c = Cipher.from_settings(f"k1:{key()}", "k1")
    sealed = c.seal_text("text", "msg-1")
    with pytest.raises(ValueError):
        c.open_text(sealed, "msg-2")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError):
        c.open_text(tampered, "msg-1")


def test_rotation_keeps_old_values_readable_and_plaintext_passes():
    old, new = key(), key()
    before = Cipher.from_settings(f"k1:{old}", "k1").seal_text("old", "m")
    rotated = Cipher.from_settings(f"k1:{old},k2:{new}", "k2")
    assert rotated.open_text(before, "m") == "old"
    assert rotated.seal_text("new", "n").startswith("enc:v1:k2:")
    assert rotated.open_text("never sealed", "m") == "never sealed"
    without_old = Cipher.from_settings(f"k2:{new}", "k2")
    with pytest.raises(ValueError, match="no key 'k1'"):
        without_old.open_text(before, "m")


def test_off_by_default_and_bad_settings_name_the_key():
    off = Cipher.from_settings("", "")
    assert not off.enabled and off.seal_text("x", "m") == "x"
    for spec, active in ((f"k1:{key()}", "k9"), ("k1:c2hvcnQ=", ""), (f":{key()}", "")):
        with pytest.raises(SettingsError, match="PARLEY_ENCRYPTION"):
            Cipher.from_settings(spec, active)
    secret = key()
    assert secret not in repr(Cipher.from_settings(f"k1:{secret}", "k1"))

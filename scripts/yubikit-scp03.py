#!/usr/bin/env python3
"""yubikit (PyPI yubikey-manager 5.9.2) as an independent SCP03 host against `ykt se serve`.

Runs inside the venv that .ci/run (or scripts/pcsc-it) makes, through pcscd and vpcd:

  1. SELECT the ISD A000000151000000 and open SCP03 with KVN 30 and the public GP test keys
     40..4F (yubikit: i = 70 with a pseudo-random card challenge, level 33: C-MAC, C-DEC,
     R-MAC, R-ENC; tsm-gp.md §5, GP Amendment D);
  2. wrapped GET DATA 66 (card recognition data: SCP03 i=70), E0 (key information: KVN 30,
     AES-128, ids 1..3) and 9F7F (CPLC, 42 bytes);
  3. wrapped GET STATUS of the ISD (P1 80: SECURED, privileges 9E FE 80) and of the
     applications (P1 40: the e-purse A000000632010105);
  4. PUT KEY of a new AES-128 key set at KVN 31 (KVN 31 replaced when an earlier run left it),
     with yubikit's own `SecurityDomainSession.put_key` and, if the card refuses its key
     blocks, in the GP Amendment D form through yubikit's wrapped `send_apdu`;
  5. a second secure channel opened with the new keys (KVN 31), and GET DATA E0 through it.

Every APDU on the wire is printed (`>` command, `<` response). The keys are public test keys.
Usage: yubikit-scp03.py READER
"""

import os
import sys

from smartcard.System import readers
from ykman.pcsc import ScardSmartCardConnection
from yubikit.core.smartcard import ApduError, SmartCardConnection
from yubikit.core.smartcard.scp import KeyRef, Scp03KeyParams, StaticKeys
from yubikit.securitydomain import SecurityDomainSession

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

GP_TEST_KEY = bytes(range(0x40, 0x50))  # public GlobalPlatform test key
KVN = 0x30
NEW_KVN = 0x31
ISD = bytes.fromhex("A000000151000000")
EPURSE = bytes.fromhex("A000000632010105")

failures = []
notes = []


class Logged(SmartCardConnection):
    """The pyscard connection, printing every APDU as it goes on the wire."""

    def __init__(self, inner):
        self.inner = inner

    @property
    def transport(self):
        return self.inner.transport

    def close(self):
        self.inner.close()

    def send_and_receive(self, apdu):
        print(f"> {bytes(apdu).hex().upper()}")
        data, sw = self.inner.send_and_receive(apdu)
        print(f"< {bytes(data).hex().upper()} {sw:04X}")
        return data, sw


def check(ok, what):
    print(("  ok   " if ok else "  FAIL ") + what)
    if not ok:
        failures.append(what)


def tlvs(data):
    """Parses a BER-TLV list (1- or 2-byte tags, short and 81/82 lengths) into (tag, value)."""
    out, i = [], 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            tag = tag << 8 | data[i]
            i += 1
        n = data[i]
        i += 1
        if n == 0x81:
            n, i = data[i], i + 1
        elif n == 0x82:
            n, i = data[i] << 8 | data[i + 1], i + 2
        out.append((tag, bytes(data[i : i + n])))
        i += n
    return out


def aes_ecb(key, block):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def aes_cbc(key, data):
    e = Cipher(algorithms.AES(key), modes.CBC(b"\0" * 16)).encryptor()
    return e.update(data) + e.finalize()


def key_info(sd):
    """GET DATA E0 through the channel: {(key id, KVN): (type, length)}."""
    data = sd.get_data(0xE0)
    (tag, body), *_ = tlvs(data)
    assert tag == 0xE0, f"GET DATA E0 answered tag {tag:02X}"
    return {(v[0], v[1]): (v[2], v[3]) for t, v in tlvs(body) if t == 0xC0}


def open_session(conn, kvn, keys, what):
    print(f"\n== {what}")
    sd = SecurityDomainSession(conn)  # SELECT A000000151000000
    sd.authenticate(Scp03KeyParams(ref=KeyRef(0x01, kvn), keys=keys))
    print(f"  ok   SCP03 open at level 33 with KVN {kvn:02X}")
    return sd


def main():
    name = sys.argv[1]
    reader = next((r for r in readers() if str(r) == name), None)
    if reader is None:
        sys.exit(f"no reader {name!r}")
    conn = Logged(ScardSmartCardConnection(reader.createConnection()))

    sd = open_session(conn, KVN, StaticKeys.default(), "SCP03 with the GP test keys, KVN 30")
    assert StaticKeys.default().key_enc == GP_TEST_KEY

    print("\n== GET DATA 66, E0, 9F7F (wrapped)")
    crd = sd.get_data(0x66)
    check(crd[:1] == b"\x66" and b"\x73" in crd[:4], "66: card recognition data 66 { 73 ... }")
    check(bytes.fromhex("2A864886FC6B040370") in crd, "66: SCP03 i=70 announced (OID ...6B 04 03 70)")
    try:
        sd.get_card_recognition_data()
        notes.append("yubikit's get_card_recognition_data() parsed the GP form 66 { 73 ... }")
    except Exception as e:  # yubikit expects the YubiKey form without the 66 template
        notes.append(f"yubikit's get_card_recognition_data() does not parse 66 {{ 73 ... }}: {e!r}")
    info = key_info(sd)
    check(all(info.get((i, KVN)) == (0x88, 16) for i in (1, 2, 3)), "E0: KVN 30, ids 1..3, AES (88), 16 bytes")
    cplc = sd.get_data(0x9F7F)
    check(cplc[:3] == b"\x9f\x7f\x2a" and len(cplc) == 45, "9F7F: CPLC, 42 bytes")

    print("\n== GET STATUS (wrapped)")
    isd = sd.protocol.send_apdu(0x80, 0xF2, 0x80, 0x02, bytes.fromhex("4F00"))
    (tag, body), *_ = tlvs(isd)
    fields = dict(tlvs(body))
    check(tag == 0xE3 and fields.get(0x4F) == ISD, "ISD: E3 { 4F A000000151000000 ... }")
    check(fields.get(0x9F70) == b"\x0f", "ISD: life cycle SECURED (0F)")
    check(fields.get(0xC5) == bytes.fromhex("9EFE80"), "ISD: privileges 9E FE 80")
    apps = sd.protocol.send_apdu(0x80, 0xF2, 0x40, 0x02, bytes.fromhex("4F00"))
    aids = [dict(tlvs(v)).get(0x4F) for t, v in tlvs(apps) if t == 0xE3]
    check(EPURSE in aids, f"applications: the e-purse A000000632010105 listed ({len(aids)} entries)")

    print(f"\n== PUT KEY: a new AES-128 key set at KVN {NEW_KVN:02X}")
    new = StaticKeys(os.urandom(16), os.urandom(16), os.urandom(16))
    replace = NEW_KVN if (1, NEW_KVN) in info else 0
    if replace:
        print(f"  (KVN {NEW_KVN:02X} is left from an earlier run: replacing it)")
    try:
        sd.put_key(KeyRef(0x01, NEW_KVN), new, replace)
        print("  ok   yubikit put_key accepted")
        notes.append("yubikit's put_key (key blocks 88 10 <key>) accepted")
    except ApduError as e:
        notes.append(
            f"yubikit's put_key refused with SW {e.sw:04X}: its AES key blocks are 88 10 <encrypted key> "
            "03 <KCV>, without the key-length byte of GP Amendment D (88 11 10 <encrypted key>)"
        )
        print(f"  note yubikit put_key refused with {e.sw:04X}; sending the GP Amendment D form")
        # yubikit may have closed nothing: the card keeps the session after a refused command.
        data = bytes([NEW_KVN])
        expected = bytes([NEW_KVN])
        for k in new:
            kcv = aes_ecb(k, b"\x01" * 16)[:3]
            data += b"\x88\x11\x10" + aes_cbc(GP_TEST_KEY, k) + b"\x03" + kcv
            expected += kcv
        resp = sd.protocol.send_apdu(0x80, 0xD8, replace, 0x81, data)
        check(resp == expected, "PUT KEY (GP form): response = new KVN and the three KCVs")
    info = key_info(sd)
    check(all(info.get((i, NEW_KVN)) == (0x88, 16) for i in (1, 2, 3)), "E0 now lists KVN 31")
    check(all(info.get((i, KVN)) == (0x88, 16) for i in (1, 2, 3)), "E0 still lists KVN 30")

    sd = open_session(conn, NEW_KVN, new, "a second channel with the new keys, KVN 31")
    info = key_info(sd)
    check((1, NEW_KVN) in info, "GET DATA E0 through the new channel")

    conn.close()
    print()
    for n in notes:
        print(f"note: {n}")
    if failures:
        sys.exit(f"{len(failures)} yubikit check(s) failed: {failures}")
    print("yubikit SCP03 interop: all checks passed")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds the terminal parameter files 4026 and 4020 of shared/spec/qr-code.md §2.3 with
Python's hashlib SHA-1, independently of ykt-qr, and prints them as hex, one file a line:

    python3 crates/ykt-qr/tests/data/make_tables.py

writes tables_4026_hashlib.hex and tables_4020_hashlib.hex next to this script.

Layout (every integer big-endian, as the brief's preamble says for all integers):
  4026: version u32 | count u32 | RFU(4) = 00 | SHA-1 of the records (20) | count x 160-byte records
        record: medium(1) = 00 | code version(1) | 144-byte root key record | RFU(14) = 00
  4020: version u32 | count u32 | SHA-1 of the records (20) | count x 16-byte records
        record: issuer field(8) | platform field(4) | card type(1) | RFU(2) = 00 | ticket type(1)
"""

import hashlib
import os
import struct

# The brief's §6 root key record (index 01, expiry 1230, self-signed with the default ID;
# OpenSSL 3.0.19 verified it) and the real record the brief quotes from S5 in §2.3 (index 02,
# expiry 1240, parameter id 11; its self-signature verified by the brief's authors).
ROOT_6 = bytes.fromhex(
    "2101010000a000000632011230040040"
    "d10c773d617e7743b6179d68c43f40f419e45df2bf5572801dfdc5006d34cbd2"
    "8cc0adb36926559d27e5b515fdcec9ed144e94cd317177c7675a28f461323623"
    "d73898bc7db6ed355173edc79e1c0e21b8618ecfd31b3130143cb0700e9fca8d"
    "4a22e6945f90103cfeafcee15125e38936cab50e39974d4f1a14d3ca8f0fa5db"
)
ROOT_S5 = bytes.fromhex(
    "2101010000a000000632021240041140dcb53b215317dd87eac919eea6524085"
    "cacf49e37cf055b0b6c0aa84d8157f496f32bfd10bef202cdd897fa8e6172f2f"
    "14e3ca810fed8089702cb61277690c6c4ef502d60834bb033ab536d4d652a200"
    "f08ee141cdd6695c44580f0a75af944249fc17b5652bab5e4df6b2c692fa351e"
    "04ac52850a6adffb2e12053f34b800d2"
)
assert len(ROOT_6) == 144 and len(ROOT_S5) == 144

VERSION_4026 = 2
VERSION_4020 = 7


def entry_4026(code_version, record):
    return bytes([0x00, code_version]) + record + bytes(14)


def record_4020(issuer, platform, card_type, ticket_type):
    return issuer + platform + bytes([card_type]) + bytes(2) + bytes([ticket_type])


def table_4026(version, records):
    body = b"".join(records)
    return struct.pack(">II", version, len(records)) + bytes(4) + hashlib.sha1(body).digest() + body


def table_4020(version, records):
    body = b"".join(records)
    return struct.pack(">II", version, len(records)) + hashlib.sha1(body).digest() + body


roots = [entry_4026(0x80, ROOT_6), entry_4026(0x81, ROOT_6), entry_4026(0x80, ROOT_S5)]
whitelist = [
    # The §6 issuer: org 99990001 (last 4 bytes FF, not compared), platform 99990002, ticket 01.
    record_4020(bytes.fromhex("99990001ffffffff"), bytes.fromhex("99990002"), 0x00, 0x01),
    # Every platform of org 02002900 (FF: don't compare), card type 02, ticket 05.
    record_4020(bytes.fromhex("02002900ffffffff"), bytes.fromhex("ffffffff"), 0x02, 0x05),
]

here = os.path.dirname(os.path.abspath(__file__))
for name, data in [
    ("tables_4026_hashlib.hex", table_4026(VERSION_4026, roots)),
    ("tables_4020_hashlib.hex", table_4020(VERSION_4020, whitelist)),
]:
    with open(os.path.join(here, name), "w") as f:
        f.write(data.hex() + "\n")
    print(name, len(data), "bytes, SHA-1 of the records", hashlib.sha1(data[32 if "4026" in name else 28:]).hexdigest())

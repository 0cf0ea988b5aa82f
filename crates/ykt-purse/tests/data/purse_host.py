#!/usr/bin/env python3
"""Independent host/issuer-side values for the e-purse transcripts in this folder.

Uses only Python `cryptography` (>= 43; tested with 48.0.0), not ykt-crypto, so the transcripts
check the applet against a second implementation of e-purse.md §3.2, §4.10, §4.12, §5.
Run: python3 purse_host.py  (prints every value the transcripts use, with its label).
"""
import struct
from cryptography.hazmat.primitives.ciphers import Cipher, modes, algorithms
try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # older cryptography
    TripleDES = algorithms.TripleDES

MASTERS = {
    "DLK": "2233445566778899AABBCCDDEEFF0011",
    "DPK": "11223344556677888877665544332211",
    "DTK": "00112233445566778899AABBCCDDEEFF",
    "DAMK": "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
    "DPUK": "1032547698BADCFE0123456789ABCDEF",
    "DRPK": "FEDCBA98765432100123456789ABCDEF",
}
ASN = bytes.fromhex("31041000000012345678")
DIV = ASN[2:]
SEED = 0x594B_5450_5552_5345  # ykt_purse::testing::TEST_CARD_SEED
SCRIPT = bytes.fromhex("1A2B3C4D5E6F7A8B")  # ykt_purse::testing::TEST_CARD_RANDOMS


def ecb(alg, key, block, decrypt=False):
    c = Cipher(alg(key), modes.ECB())
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(block) + op.finalize()


def tdes(key, block, decrypt=False):
    return ecb(TripleDES, key + key[:8] if len(key) == 16 else key, block, decrypt)


def des(key8, block, decrypt=False):
    return tdes(key8 * 3, block, decrypt)


def sm4(key, block, decrypt=False):
    return ecb(algorithms.SM4, key, block, decrypt)


def pad80(data, n):
    data = data + b"\x80"
    while len(data) % n:
        data += b"\x00"
    return data


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def inv(b):
    return bytes(x ^ 0xFF for x in b)


def diversify(alg, mk):
    if alg == "tdes":
        return tdes(mk, DIV) + tdes(mk, inv(DIV))
    return sm4(mk, DIV + inv(DIV))


def retail_mac(key, iv, data):
    """ISO 9797-1 MAC algorithm 3 with 80-padding (e-purse.md §5.3), 4 bytes."""
    h = iv
    for i in range(0, len(pad80(data, 8)), 8):
        h = des(key[:8], xor(h, pad80(data, 8)[i:i + 8]))
    h = des(key[:8], des(key[8:], h, decrypt=True))
    return h[:4]


def sm4_mac(key, iv, data):
    h = iv
    p = pad80(data, 16)
    for i in range(0, len(p), 16):
        h = sm4(key, xor(h, p[i:i + 16]))
    return h[:4]


def sm_mac(alg, key, challenge4, data):
    if alg == "tdes":
        return retail_mac(key, challenge4 + bytes(4), data)
    return sm4_mac(key, challenge4 + bytes(12), data)


def pboc_des_mac(key8, data):
    h = bytes(8)
    p = pad80(data, 8)
    for i in range(0, len(p), 8):
        h = des(key8, xor(h, p[i:i + 8]))
    return h[:4]


def tac_like(alg, key, data):
    """TAC construction (e-purse.md §5.5/§5.7), also our RELOAD PIN MAC."""
    if alg == "tdes":
        return pboc_des_mac(xor(key[:8], key[8:]), data)
    return sm4_mac(key, bytes(16), data)


def splitmix(seed):
    """ykt_card::SeededRandom: SplitMix64, each fill uses whole big-endian u64 words."""
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & (2**64 - 1)
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        yield struct.pack(">Q", z ^ (z >> 31))


def card_draws(sizes):
    """The card randoms of the test card for successive fills of the given sizes."""
    script = bytearray(SCRIPT)
    stream = splitmix(SEED)
    out = []
    for n in sizes:
        take = bytes(script[:n])
        del script[:n]
        rest = n - len(take)
        while rest > 0:
            word = next(stream)
            take += word[:min(8, rest)]
            rest -= min(8, rest)
        out.append(take)
    return out


def enc_pin_block(alg, dpuk, pin):
    n = 8 if alg == "tdes" else 16
    block = pad80(bytes([len(pin)]) + pin, n)
    return tdes(dpuk, block) if alg == "tdes" else sm4(dpuk, block)


def main():
    for alg in ("tdes", "sm4"):
        k = {name: diversify(alg, bytes.fromhex(mk)) for name, mk in MASTERS.items()}
        print(f"== {alg}")
        for name in MASTERS:
            print(f"{name} = {k[name].hex().upper()}")
        # Card draws of a fresh test card: GET CHALLENGE 4 bytes each time.
        ch = card_draws([4, 4, 4, 4])
        print("challenges (fresh card, 4-byte GET CHALLENGE x4):", [c.hex().upper() for c in ch])
        for i, (label, hdr) in enumerate([
            ("APPLICATION BLOCK temp 841E000004", "841E000004"),
            ("APPLICATION UNBLOCK 8418000004", "8418000004"),
            ("APPLICATION BLOCK perm 841E000104", "841E000104"),
            ("CARD BLOCK 8416000004", "8416000004"),
        ]):
            for j, c in enumerate(ch):
                print(f"MAC {label} with challenge#{j + 1} {c.hex().upper()} = "
                      f"{sm_mac(alg, k['DAMK'], c, bytes.fromhex(hdr)).hex().upper()}")
        pin = bytes.fromhex("123456")
        enc = enc_pin_block(alg, k["DPUK"], pin)
        lc = len(enc) + 4
        for j, c in enumerate(ch):
            hdr = bytes([0x84, 0x24, 0x00, 0x00, lc]) + enc
            print(f"PIN UNBLOCK 123456 challenge#{j + 1}: data = {enc.hex().upper()} "
                  f"MAC {sm_mac(alg, k['DPUK'], c, hdr).hex().upper()}")
        wrong = enc_pin_block(alg, k["DPUK"], bytes.fromhex("654321"))
        hdr = bytes([0x84, 0x24, 0x00, 0x00, lc]) + wrong
        print(f"PIN UNBLOCK 654321 challenge#1: data = {wrong.hex().upper()} "
              f"MAC {sm_mac(alg, k['DPUK'], ch[0], hdr).hex().upper()}")
        for newpin in ("123456", "9876", "13579F"):
            p = bytes.fromhex(newpin)
            print(f"RELOAD PIN {newpin}: MAC {tac_like(alg, k['DRPK'], p).hex().upper()}")


if __name__ == "__main__":
    main()

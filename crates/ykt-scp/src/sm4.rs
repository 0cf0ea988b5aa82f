//! The SM4 channel: what it is, and the one place its uncertain choices live.
//!
//! **What it is.** SCP03 (GP Amendment D) byte for byte, with SM4 (GB/T 32907) wherever SCP03
//! uses AES: the session keys, cryptograms and pseudo-random card challenge come from the NIST
//! SP 800-108 counter-mode KDF with SM4-CMAC as the PRF and the SCP03 derivation constants and
//! layout; C-MAC and R-MAC are SM4-CMAC with the SCP03 chaining; C-DEC and R-ENC are SM4-CBC
//! with the SCP03 counter ICVs. Keys are 16 bytes, so every L is 128 bits for session keys.
//! The `i` parameter, S8/S16 modes and security levels are those of SCP03.
//!
//! **Why.** JT/T 1059.6—2025 §6.1.2 changed "the SE secure-channel protocols to support", and the
//! change is most likely an SM4-based channel, but the text is not public and no public source
//! specifies an SM4 GlobalPlatform channel (tsm-gp.md §5.3: neither GlobalPlatformPro,
//! kaoh/globalplatform nor pysim has one; GP's "SCP10" is the RSA channel). SCP03 is a block
//! cipher-agnostic construction over a 128-bit block cipher, and SM4 is a 128-bit block cipher,
//! so this is the smallest change that gives a national-crypto channel (tsm-gp.md §5.3
//! \[PROPOSAL\]).
//!
//! **L.** All of it is L (tsm-gp.md §5.3, unresolved). How a card announces the channel is in
//! [`SM4_CHANNEL`], the one switchable place; the construction itself is the SCP03 code with
//! the cipher swapped (`BlockKey::Sm4`), so nothing else differs.

/// The SM4 channel's announced parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sm4Channel {
    /// The SCP identifier byte in the key information of INITIALIZE UPDATE.
    pub scp_id: u8,
    /// The key type of SM4 keys in PUT KEY (for the card manager).
    pub key_type: u8,
}

/// The brief's choice (L, tsm-gp.md §5.3 \[PROPOSAL\]): announced as SCP `03`, so a host tells
/// it from AES SCP03 by its configured key set (an SM4 key set) rather than by the card's
/// answer; SM4 keys have PUT KEY key type `89` (kaoh/globalplatform's value; GPPro treats
/// `89`–`8F` as RFU; tsm-gp.md §3.6).
pub const SM4_CHANNEL: Sm4Channel = Sm4Channel {
    scp_id: 0x03,
    key_type: 0x89,
};

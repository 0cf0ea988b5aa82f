//! NFC QR applet (NFC二维码, the SE-signed ride QR code) for the `ykt-card` runtime: the user's
//! SM2 key is made on the card and never leaves it; the card signs the ride code on request;
//! the wallet only shows it. No I/O.
//!
//! The brief is the project's `shared/spec/qr-code.md`; section numbers below are its own. Its
//! §4.3 says that **nothing public** defines this variant (no APDUs, no AID) and proposes a
//! minimal design; every command below is therefore **\[PROPOSAL\]** (L), to be replaced when the
//! JT/T 1059 text is obtained. The prose version of this table is `docs/nfc-qr.md`.
//!
//! ```text
//!  wallet / OMAPI                    card (this applet)                       issuer back end
//!  SELECT A000000632515201   ───▶   FCI 6F{84 AID}
//!  80 E0 00 01 (GEN KEY)     ───▶   d ← card RNG; store d, Q; answer 04‖X‖Y
//!        Q (04‖X‖Y) ──────────────────────────────────────────────────▶ authorise Q (§4.1)
//!        blob = fields 1–15 ◀───────────────────────────────────────── signature B
//!  80 E2 01|00 00 (STORE)    ───▶   field 10 = my key? B (and A) verify? store; counter = 0
//!  80 E4 01 00 04 time       ───▶   time ≥ last, ≤ field 11, count < limit;
//!                                   signature C over blob ‖ time (ykt_qr::wallet);
//!                                   counters + last time [one transaction]; answer the code
//!  QR symbol ◀── code (332 + N bytes) ──▶ terminal: ykt_qr::Verifier, unchanged (§4.3)
//! ```
//!
//! # Commands \[PROPOSAL\]
//!
//! Class `80` for all; another class with one of these INS gives `6E00`, any other INS `6D00`,
//! a logical channel or command chaining in the class the runtime's `6881`/`6884`. Every
//! refusal leaves the persistent state unchanged.
//!
//! | # | Command | C-APDU | Answer | Status words |
//! |---|---|---|---|---|
//! | 1 | GENERATE KEY PAIR | `80 E0 P1 P2 [Le]`; P1 `00` first key, `01` replace; P2 `00` compressed, `01` uncompressed | `02/03 ‖ X` (33) or `04 ‖ X ‖ Y` (65) | `6A89` key exists (P1 `00`); `6985` authorisation stored (P1 `01`); `6A86`; `6700` data present |
//! | 2 | GET PUBLIC KEY | `80 E6 00 P2 [Le]`; P2 as above | as above | `6A88` no key; `6A86`; `6700` |
//! | 3 | STORE AUTHORISATION | `80 E2 P1 00 Lc blob`; P1 `01` more parts follow, `00` last (or only, extended Lc) part | none | `6A88` no key; `6700` empty or > 295 B in all; `6A80` not a blob, signature B or A bad, no root key for it; `6984` field 10 is another key; `6985` expired by the last generation time, or expiry not later than the stored one's; `6A86` |
//! | 4 | GENERATE CODE | `80 E4 P1 00 04 time [Le]`; P1 `00` field 17 only, `01` whole code | `15 ‖ r ‖ s` (65) or the code (332 + N, `61xx`) | `6A88` no key or no authorisation; `6A80` time before the last one signed; `6985` time after field 11 or certificate month passed; `9402` code limit reached; `6700`; `6A86` |
//! | 5 | GET DATA | `80 CA 00 00 [Le]` | status record, 25 B ([`status`]) | `6A86`; `6700` |
//! | 6 | RESET | `80 EA 00 00 40 r ‖ s` (issuer's signature over [`reset_message`]) | none | `6A88` no key or no authorisation; `6982` signature bad; `6700`; `6A86` |
//!
//! Where the brief speaks, the choice follows it: CLA `80`, INS `E0`/`E2`/`E4` (its
//! placeholders), refusal of a second key unless P1 = `01`, the field 10 check, the blob of at
//! most 300 bytes, the card signing blob ‖ gen_time with the §2.4 ID, `15 ‖ r ‖ s` as the
//! answer, gen_time never going backwards, a per-blob counter (2000 by default,
//! [`DEFAULT_MAX_CODES_PER_AUTHORISATION`]) and `6985` for an expired blob. Ours, each named in
//! one item: the AID ([`NFCQR_AID`]), the uncompressed form (P2 `01`, for the back end's
//! 130-hex-digit key, §4.1 \[S6\]), the whole code as an answer (P1 `01`), the part form of STORE
//! AUTHORISATION, GET PUBLIC KEY, GET DATA and its record, RESET and its message (the brief's
//! "personalisation key" is the issuer key of the stored certificate), the expiry rule for a
//! new blob, and every status word the brief does not give.
//!
//! # What this crate owns
//!
//! * [`NfcQrApplet`] (kind [`KIND`] = `"ykt.nfcqr"`): the commands above, one family per file
//!   under `src/commands/`, each handler citing its section.
//! * The persistent layout (below) and its atomicity: each command's writes are one store
//!   transaction, so a power cut leaves the state of before or after the command.
//! * The issuer-side set-up ([`IssuedNfcQr`]: AID, [`NfcQrProfile`], root keys) until
//!   GlobalPlatform personalisation exists, [`NfcQrAppletFactory`] for `Card::load_state`, and
//!   the test card in [`testing`].
//!
//! It does **not** own the code format, the IDs or the signature rules (all `ykt-qr`: the card
//! builds and signs through `ykt_qr::wallet::generate`, so the bytes are exactly the software
//! wallet's), the terminal side (`ykt_qr::Verifier` accepts SE codes as they are), the
//! dispatcher, GET RESPONSE, tearing (`ykt-card`), nor the primitives (`ykt-crypto`). There is no
//! PIN: the brief suggests none, and a code is shown on the phone that holds the card.
//!
//! # Persistent layout (per instance)
//!
//! | Object | Contents | Changes when |
//! |---|---|---|
//! | `ObjectId(0x0100)` key, 98 B | present (1) · d (32) · `04 ‖ X ‖ Y` (65) | GENERATE KEY PAIR, RESET |
//! | `ObjectId(0x0101)` authorisation, 298 B | present (1) · length (2) · fields 1–15 (≤ 295) | STORE AUTHORISATION, RESET |
//! | `ObjectId(0x0102)` counters, 20 B | codes under the authorisation (4) · codes in all (4) · last generation time (4) · authorisations stored (2) · key pairs made (2) · RFU (4) | every successful command but the reads |
//! | `ObjectId(0x0103)` root keys | count (1) · (version (1) · 4026 key record (144))* | set-up only |
//!
//! Volatile only: the parts of a STORE AUTHORISATION in several commands.
//!
//! # Security notes
//!
//! The private key is in no answer and no `Debug` output (`Sm2PrivateKey` prints
//! `[redacted]` and wipes itself). The card has no clock, so "expired" means "the time the
//! wallet gives, or the latest time it gave before, is after field 11": a phone that lies about
//! the time can at worst pre-compute codes up to the per-authorisation limit and the expiry,
//! which is what the brief's counter bounds; it can also use them up (a denial of service it
//! has anyway).
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

mod applet;
mod commands;
pub mod factory;
mod state;
pub mod testing;

pub use applet::{
    CLA, INS_GENERATE_CODE, INS_GENERATE_KEY_PAIR, INS_GET_DATA, INS_GET_PUBLIC_KEY, INS_RESET,
    INS_STORE_AUTHORISATION, KIND, NfcQrApplet,
};
pub use commands::reset::{RESET_PREFIX, reset_message};
pub use factory::{
    DEFAULT_MAX_CODES_PER_AUTHORISATION, IssuedNfcQr, MAX_ROOT_KEYS, NfcQrAppletFactory,
    NfcQrProfile, SetupError,
};
pub use state::{Counters, MAX_AUTHORISATION_LEN};

/// P1 and P2 values and the status record of the commands.
pub mod status {
    pub use crate::commands::authorisation::{LAST_PART, MORE_PARTS};
    pub use crate::commands::code::{ANSWER_CODE, ANSWER_SIGNATURE};
    pub use crate::commands::data::{
        STATE_AUTHORISED, STATE_EXHAUSTED, STATE_KEY, STATE_NO_KEY, STATUS_LEN,
    };
    pub use crate::commands::key::{GENERATE_NEW, GENERATE_REPLACE};
}

/// AID of the NFC QR applet.
///
/// L (qr-code.md §4.3: "issuer-assigned; under RID `A000000632` if the MOT allocates one"; none
/// is public): `A000000632 5152 01`, the MOT RID, ASCII `QR`, version `01`. It does not extend
/// the e-purse AID `A000000632010105`, so no partial SELECT of the e-purse reaches it.
pub const NFCQR_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x51, 0x52, 0x01];

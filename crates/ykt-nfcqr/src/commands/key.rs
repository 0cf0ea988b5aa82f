//! GENERATE KEY PAIR and GET PUBLIC KEY (qr-code.md §4.3; command table rows 1 and 2).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_crypto::Sm2PrivateKey;

use crate::applet::CardRng;
use crate::commands::{no_data, public_key_format};
use crate::state::{Counters, UserKey, load_authorisation};

/// P1 of GENERATE KEY PAIR: a first key; refused when the applet has one.
pub const GENERATE_NEW: u8 = 0x00;
/// P1 of GENERATE KEY PAIR: replace the key; refused once an authorisation is stored.
pub const GENERATE_REPLACE: u8 = 0x01;

fn encode_public(key: &UserKey, uncompressed: bool) -> Vec<u8> {
    if uncompressed {
        key.uncompressed().to_vec()
    } else {
        key.compressed().to_vec()
    }
}

/// `80 E0 P1 P2 [Le]`, GENERATE KEY PAIR (qr-code.md §4.3: "The key is generated on-card and
/// never exported"; "refuse if a key exists, unless P1=`01`").
///
/// P1 `00` makes the first key (`6A89` if one exists); P1 `01` replaces it while no
/// authorisation names it (`6985` once one is stored: only RESET frees it). P2 chooses the
/// answer's form ([`public_key_format`]). The new key and the key-pair counter are one
/// transaction.
pub(crate) fn generate_key_pair(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    let replace = match cmd.p1 {
        GENERATE_NEW => false,
        GENERATE_REPLACE => true,
        _ => return Err(StatusWord::INCORRECT_P1P2),
    };
    let uncompressed = public_key_format(cmd)?;
    no_data(cmd)?;
    if UserKey::load(ctx)?.is_some() {
        if !replace {
            return Err(StatusWord::FILE_ALREADY_EXISTS);
        }
        if load_authorisation(ctx)?.is_some() {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
    }
    let private = Sm2PrivateKey::generate(&mut CardRng(ctx)).map_err(|_| StatusWord::UNKNOWN)?;
    UserKey::store(ctx, &private)?;
    let mut counters = Counters::load(ctx)?;
    counters.key_pairs_generated = counters.key_pairs_generated.saturating_add(1);
    counters.store(ctx)?;
    Ok(encode_public(&UserKey { private }, uncompressed))
}

/// `80 E6 00 P2 [Le]`, GET PUBLIC KEY (ours; qr-code.md §4.1 step 1: the client registers the
/// public key with the back end). `6A88` without a key.
pub(crate) fn get_public_key(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    if cmd.p1 != 0 {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    let uncompressed = public_key_format(cmd)?;
    no_data(cmd)?;
    let key = UserKey::load(ctx)?.ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    Ok(encode_public(&key, uncompressed))
}

//! The wallet (§4.2): at each display or refresh it dates the issuer's blob and signs it with
//! the device key (signature C over fields 1–16).

use rand_core::CryptoRng;
use ykt_crypto::Sm2PrivateKey;

use crate::code::{Authorisation, QrCode, SignatureField};
use crate::error::{Error, Structure};
use crate::{compress_public_key, ids};

/// A fresh code from `authorisation`, dated `now` (Unix seconds, the phone's clock) and signed
/// with `device_key`, which must be the key of field 10. Refuses once the authorisation has
/// expired (`now` after field 11): the wallet must fetch a new blob first.
pub fn generate<R: CryptoRng>(
    authorisation: &Authorisation,
    device_key: &Sm2PrivateKey,
    now: u32,
    rng: &mut R,
) -> Result<QrCode, Error> {
    let expiry = authorisation.body.authorisation_expiry;
    if now > expiry {
        return Err(Error::AuthorisationExpired { expiry, now });
    }
    danger_generate_unchecked(authorisation, device_key, now, rng)
}

/// [`generate`] without the expiry check, for test vectors of codes a terminal must refuse.
pub fn danger_generate_unchecked<R: CryptoRng>(
    authorisation: &Authorisation,
    device_key: &Sm2PrivateKey,
    now: u32,
    rng: &mut R,
) -> Result<QrCode, Error> {
    if compress_public_key(device_key.public_key()) != authorisation.body.user_public_key {
        return Err(Error::KeyMismatch(Structure::Authorisation));
    }
    let mut code = QrCode {
        authorisation: authorisation.clone(),
        generation_time: now,
        user_signature: SignatureField {
            tag: crate::code::SIGNATURE_TAG,
            signature: [0; 64],
        },
    };
    let id = ids::user_id(authorisation.version, &authorisation.body);
    let sig = device_key
        .sign_with_rng(rng, &id, &code.user_signed_bytes())
        .map_err(Error::Crypto)?;
    code.user_signature = SignatureField::new(&sig);
    Ok(code)
}

//! The device's identity (client.md §6.1): an SM2 key generated on the device from the caller's
//! RNG, kept only inside the sealed state, wiped on drop and never printed.

use rand_core::CryptoRng;
use ykt_crypto::{Sm2PrivateKey, Sm2PublicKey};
use ykt_envelope::Sm2Signer;
use zeroize::Zeroizing;

/// The device's SM2 signing key. `Debug` prints its key id only.
pub struct DeviceKey {
    key: Sm2PrivateKey,
}

impl DeviceKey {
    /// A new key from `rng`; `None` if the RNG gives no valid scalar.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Option<DeviceKey> {
        struct Adapter<'a, R: ?Sized>(&'a mut R);
        impl<R: CryptoRng + ?Sized> rand_core::TryRng for Adapter<'_, R> {
            type Error = core::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                Ok(self.0.next_u32())
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                Ok(self.0.next_u64())
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
                self.0.fill_bytes(dst);
                Ok(())
            }
        }
        impl<R: CryptoRng + ?Sized> rand_core::TryCryptoRng for Adapter<'_, R> {}
        Sm2PrivateKey::generate(&mut Adapter(rng))
            .ok()
            .map(|key| DeviceKey { key })
    }

    /// The key from its 32-byte scalar (the sealed state's device record).
    pub fn from_scalar(scalar: &[u8; 32]) -> Option<DeviceKey> {
        Sm2PrivateKey::from_bytes(scalar)
            .ok()
            .map(|key| DeviceKey { key })
    }

    /// The scalar, for sealing only.
    pub(crate) fn danger_scalar(&self) -> Zeroizing<[u8; 32]> {
        self.key.expose()
    }

    /// The public key (what enrolment registers).
    pub fn public_key(&self) -> &Sm2PublicKey {
        self.key.public_key()
    }

    /// The key id of the public key (`ykt_envelope::key_id_sm2`).
    pub fn key_id(&self) -> String {
        ykt_envelope::key_id_sm2(self.key.public_key())
    }

    /// An envelope signer over a copy of the key (wiped when the signer is dropped).
    pub fn signer(&self) -> Sm2Signer {
        Sm2Signer::new(self.key.clone())
    }
}

impl core::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DeviceKey({}, [redacted])", self.key_id())
    }
}

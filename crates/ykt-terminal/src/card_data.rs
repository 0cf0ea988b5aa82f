//! What a terminal learns about the card from its SELECT response (e-purse.md §1, §2 EF15).

use core::fmt;

use crate::FlowError;

/// The public application data of EF15 (e-purse.md §2), as copied into tag `9F0C` of the FCI.
#[derive(Clone, PartialEq, Eq)]
pub struct CardIdentity {
    /// Issuer identifier (EF15 offset 0, 8 bytes).
    pub issuer_id: [u8; 8],
    /// Application type identifier (offset 8; `02` = e-purse usable).
    pub application_type: u8,
    /// Issuer application version / start flag (offset 9).
    pub application_version: u8,
    /// Application serial number, BCD (offset 10, 10 bytes).
    pub asn: [u8; 10],
    /// Start date YYYYMMDD, BCD (offset 20).
    pub start_date: [u8; 4],
    /// Expiry date YYYYMMDD, BCD (offset 24).
    pub expiry_date: [u8; 4],
}

impl CardIdentity {
    /// Length of EF15.
    pub const EF15_LEN: usize = 30;

    /// Decodes the 30 bytes of EF15.
    pub fn from_ef15(ef15: &[u8]) -> Result<Self, FlowError> {
        let ef15: &[u8; Self::EF15_LEN] = ef15.try_into().map_err(|_| FlowError::NotAPurse)?;
        let mut issuer_id = [0u8; 8];
        issuer_id.copy_from_slice(&ef15[0..8]);
        let mut asn = [0u8; 10];
        asn.copy_from_slice(&ef15[10..20]);
        let mut start_date = [0u8; 4];
        start_date.copy_from_slice(&ef15[20..24]);
        let mut expiry_date = [0u8; 4];
        expiry_date.copy_from_slice(&ef15[24..28]);
        Ok(Self {
            issuer_id,
            application_type: ef15[8],
            application_version: ef15[9],
            asn,
            start_date,
            expiry_date,
        })
    }

    /// Decodes the EF15 copy in tag `9F0C` of a SELECT response (e-purse.md §1).
    pub fn from_fci(fci: &[u8]) -> Result<Self, FlowError> {
        let tlv = ykt_apdu::tlv::find(fci, 0x9F0C).ok_or(FlowError::NotAPurse)?;
        Self::from_ef15(&tlv.value)
    }

    /// The key-diversification input: the last 8 bytes of the ASN (e-purse.md §3.2).
    pub fn diversifier(&self) -> [u8; 8] {
        let mut div = [0u8; 8];
        div.copy_from_slice(&self.asn[2..]);
        div
    }

    /// The card number for logs and screens: first 4 and last 4 digits, the rest masked.
    pub fn masked_number(&self) -> MaskedNumber<'_> {
        MaskedNumber(&self.asn)
    }
}

impl fmt::Debug for CardIdentity {
    // The full card number stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardIdentity")
            .field("asn", &self.masked_number())
            .field("application_type", &self.application_type)
            .finish_non_exhaustive()
    }
}

/// A card number with the middle digits masked, e.g. `3104********5678`.
pub struct MaskedNumber<'a>(&'a [u8; 10]);

impl fmt::Display for MaskedNumber<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.len() * 2;
        for (i, byte) in self.0.iter().enumerate() {
            for (j, nibble) in [byte >> 4, byte & 0x0F].into_iter().enumerate() {
                let pos = i * 2 + j;
                if pos < 4 || pos >= digits - 4 {
                    write!(f, "{nibble:X}")?;
                } else {
                    f.write_str("*")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for MaskedNumber<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

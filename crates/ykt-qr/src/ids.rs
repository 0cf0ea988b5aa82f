//! The SM2 user IDs of the three signatures (qr-code.md §2.4), in one place.
//!
//! | signature | version `80` and others | version `81` (Shanghai local) |
//! |---|---|---|
//! | A, certificate | `1234567812345678` | service id(4) ‖ CA index(1) |
//! | B, issuer authorisation | `1234567812345678` | org code(4) ‖ platform id(4) |
//! | C, user | `1234567812345678` | user account(10) |
//!
//! M (§2.4, from S1, which quotes the rule text for `81`; the default ID for every other
//! version agrees with S4 and S5). The root key record's self-signature uses the default ID
//! (H, §2.3: checked against a real record).

use alloc::vec::Vec;

use ykt_crypto::DEFAULT_SM2_ID;

use crate::cert::IssuerCertificate;
use crate::code::{CodeBody, Version};

/// The ID of the root key record's self-signature (§2.3, H).
pub const ROOT_RECORD_ID: &[u8] = DEFAULT_SM2_ID;

/// The ID of all three signatures of an interoperable code (version `80`) and of any version
/// other than [`LOCAL_ID_VERSION`] (§2.4, M).
pub const INTEROPERABLE_ID: &[u8] = DEFAULT_SM2_ID;

/// The version whose signatures use IDs built from the code's own fields (§2.4, M: Shanghai
/// local codes).
pub const LOCAL_ID_VERSION: Version = Version::LOCAL;

/// The user ID of signature A (the root CA over the certificate).
pub fn certificate_id(version: Version, cert: &IssuerCertificate) -> Vec<u8> {
    if version == LOCAL_ID_VERSION {
        let mut id = Vec::with_capacity(5);
        id.extend_from_slice(&cert.service_id);
        id.push(cert.ca_index);
        id
    } else {
        INTEROPERABLE_ID.to_vec()
    }
}

/// The user ID of signature B (the issuer over fields 3–14).
pub fn issuer_id(version: Version, body: &CodeBody) -> Vec<u8> {
    if version == LOCAL_ID_VERSION {
        let mut id = Vec::with_capacity(8);
        id.extend_from_slice(&body.org_code);
        id.extend_from_slice(&body.platform_id);
        id
    } else {
        INTEROPERABLE_ID.to_vec()
    }
}

/// The user ID of signature C (the user over fields 1–16).
pub fn user_id(version: Version, body: &CodeBody) -> Vec<u8> {
    if version == LOCAL_ID_VERSION {
        body.user_account.to_vec()
    } else {
        INTEROPERABLE_ID.to_vec()
    }
}

//! Which keys are the SEI role's (tsm-gp.md §6): the ISD master keys (per-SE ISD keys are
//! derived from them), the delegated-management token signer, the receipt key and the SSDs'
//! initial key sets. Everything else (the SP's own SSD sets, its transport key, the purse
//! issuer's keys, another platform's keys) is not.

use ykt_tsm::{KeyName, KeyRef, Parties};

/// The SEI role's key names.
#[derive(Clone, Debug)]
pub(crate) struct SeiKeys {
    isd_master: KeyName,
    token_signer: KeyName,
    receipt_key: KeyName,
}

impl SeiKeys {
    pub(crate) fn new(parties: &Parties) -> Self {
        Self {
            isd_master: parties.isd_master.clone(),
            token_signer: parties.token_signer.clone(),
            receipt_key: parties.receipt_key.clone(),
        }
    }

    /// An SSD's initial key set: `ssd/<SEID>/<SSD AID>/initial` (`FlowState::initial_keys`),
    /// the SEID 10 bytes and the AID 5 to 16 bytes, upper-case hex.
    pub(crate) fn is_initial_set(&self, name: &KeyName) -> bool {
        let hex = |s: &str, range: std::ops::RangeInclusive<usize>| {
            s.len().is_multiple_of(2)
                && range.contains(&(s.len() / 2))
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        };
        let parts: Vec<&str> = name.0.split('/').collect();
        matches!(parts.as_slice(), ["ssd", seid, aid, "initial"] if hex(seid, 10..=10) && hex(aid, 5..=16))
    }

    /// An SE's ISD keys under this SEI's master.
    pub(crate) fn is_isd(&self, keys: &KeyRef) -> bool {
        matches!(keys, KeyRef::Isd { master, .. } if *master == self.isd_master)
    }

    /// The ISD master, the token signer or the receipt key.
    pub(crate) fn is_long_term(&self, name: &KeyName) -> bool {
        [&self.isd_master, &self.token_signer, &self.receipt_key].contains(&name)
    }

    /// The token signer.
    pub(crate) fn is_token_signer(&self, name: &KeyName) -> bool {
        *name == self.token_signer
    }

    /// The receipt key.
    pub(crate) fn is_receipt_key(&self, name: &KeyName) -> bool {
        *name == self.receipt_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ykt_tsm::SeId;

    fn keys() -> SeiKeys {
        SeiKeys::new(&Parties {
            isd_master: KeyName::new("sei/isd-master"),
            token_signer: KeyName::new("sei/token"),
            receipt_key: KeyName::new("sei/receipt"),
            sp_transport: KeyName::new("sp/transport"),
            purse_issuer: KeyName::new("sp/purse-issuer"),
        })
    }

    #[test]
    fn only_the_sei_roles_keys_are_the_seis() {
        let k = keys();
        for (name, initial) in [
            ("ssd/0102030405060708090A/A00000063201/initial", true),
            ("ssd/0102030405060708090A/A00000063201/sp", false),
            ("ssd/0102030405060708090A/A00000063201/initial/x", false),
            ("ssd/0102030405060708090a/A00000063201/initial", false),
            ("ssd/01020304050607080900AA/A00000063201/initial", false),
            ("ssd/0102030405060708090A/A000/initial", false),
            ("ssd/../A00000063201/initial", false),
            ("sp/transport", false),
            ("sei/isd-master", false),
            ("", false),
        ] {
            assert_eq!(k.is_initial_set(&KeyName::new(name)), initial, "{name}");
        }
        let seid = SeId([1; 10]);
        assert!(k.is_isd(&KeyRef::Isd {
            master: KeyName::new("sei/isd-master"),
            seid
        }));
        assert!(!k.is_isd(&KeyRef::Isd {
            master: KeyName::new("other-sei/isd-master"),
            seid
        }));
        assert!(!k.is_isd(&KeyRef::Named(KeyName::new("sei/isd-master"))));
        assert!(k.is_token_signer(&KeyName::new("sei/token")));
        assert!(!k.is_token_signer(&KeyName::new("sei/receipt")));
        assert!(k.is_receipt_key(&KeyName::new("sei/receipt")));
        for (name, long_term) in [
            ("sei/isd-master", true),
            ("sei/token", true),
            ("sei/receipt", true),
            ("sp/transport", false),
            ("sp/purse-issuer", false),
        ] {
            assert_eq!(k.is_long_term(&KeyName::new(name)), long_term, "{name}");
        }
        assert!(!k.is_receipt_key(&KeyName::new("sp/purse-issuer")));
    }
}

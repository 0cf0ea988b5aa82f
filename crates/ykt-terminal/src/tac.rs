//! MAC and TAC input layouts shared by terminals and the back office (e-purse.md §5.4, §5.5).

use alloc::vec::Vec;

use ykt_crypto::purse::{self, PurseAlgorithm, PurseKey};

/// MAC1 input of a purchase: `amount(4) || type(1) || terminal(6) || date(4) || time(3)` (§5.4, H).
pub fn purchase_mac1_input(
    amount: u32,
    transaction_type: u8,
    terminal_id: &[u8; 6],
    datetime: &[u8; 7],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(18);
    v.extend_from_slice(&amount.to_be_bytes());
    v.push(transaction_type);
    v.extend_from_slice(terminal_id);
    v.extend_from_slice(datetime);
    v
}

/// TAC input of a purchase or composite purchase:
/// `amount(4) || type(1) || terminal(6) || TTSN(4) || date(4) || time(3)` (§5.5, H).
pub fn purchase_tac_input(
    amount: u32,
    transaction_type: u8,
    terminal_id: &[u8; 6],
    ttsn: u32,
    datetime: &[u8; 7],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(22);
    v.extend_from_slice(&amount.to_be_bytes());
    v.push(transaction_type);
    v.extend_from_slice(terminal_id);
    v.extend_from_slice(&ttsn.to_be_bytes());
    v.extend_from_slice(datetime);
    v
}

/// MAC1 input of a load: `old_balance(4) || amount(4) || type(1) || terminal(6)` (§5.4, H).
pub fn load_mac1_input(
    old_balance: u32,
    amount: u32,
    transaction_type: u8,
    terminal_id: &[u8; 6],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(15);
    v.extend_from_slice(&old_balance.to_be_bytes());
    v.extend_from_slice(&amount.to_be_bytes());
    v.push(transaction_type);
    v.extend_from_slice(terminal_id);
    v
}

/// MAC2 input of a load: `amount(4) || type(1) || terminal(6) || date(4) || time(3)` (§5.4, H).
pub fn load_mac2_input(
    amount: u32,
    transaction_type: u8,
    terminal_id: &[u8; 6],
    datetime: &[u8; 7],
) -> Vec<u8> {
    purchase_mac1_input(amount, transaction_type, terminal_id, datetime)
}

/// TAC input of a load: `new_balance(4) || online_counter(2) || amount(4) || type(1) ||
/// terminal(6) || date(4) || time(3)`, the counter taken before its increment (§5.5).
pub fn load_tac_input(
    new_balance: u32,
    online_counter: u16,
    amount: u32,
    transaction_type: u8,
    terminal_id: &[u8; 6],
    datetime: &[u8; 7],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&new_balance.to_be_bytes());
    v.extend_from_slice(&online_counter.to_be_bytes());
    v.extend_from_slice(&amount.to_be_bytes());
    v.push(transaction_type);
    v.extend_from_slice(terminal_id);
    v.extend_from_slice(datetime);
    v
}

/// Back-office TAC check: derives the card's DTK from the TAC master key and the card's
/// diversifier, recomputes the TAC over `input` and compares in constant time.
pub fn verify_tac(
    alg: &PurseAlgorithm,
    tac_master: &PurseKey,
    diversifier: &[u8; 8],
    input: &[u8],
    tac: &[u8; 4],
) -> bool {
    let dtk = purse::diversify(alg, tac_master, diversifier);
    ykt_crypto::ct_eq(&purse::tac(alg, &dtk, input), tac)
}

/// Back-office TAC checks for many records under one TAC master key: the master's key schedule is
/// expanded once ([`purse::MasterKeySchedule`]), then each record costs one card-key derivation
/// and one MAC. Gives the same verdicts as [`verify_tac`].
#[derive(Debug)]
pub struct TacVerifier {
    alg: PurseAlgorithm,
    master: purse::MasterKeySchedule,
}

impl TacVerifier {
    /// A verifier for cards of algorithm `alg` whose DTKs derive from `tac_master`.
    pub fn new(alg: PurseAlgorithm, tac_master: &PurseKey) -> Self {
        Self {
            master: purse::MasterKeySchedule::new(&alg, tac_master),
            alg,
        }
    }

    /// Derives the card's DTK from its diversifier, recomputes the TAC over `input` (built with
    /// [`purchase_tac_input`] or [`load_tac_input`]) and compares in constant time.
    pub fn verify(&self, diversifier: &[u8; 8], input: &[u8], tac: &[u8; 4]) -> bool {
        let dtk = self.master.diversify(diversifier);
        ykt_crypto::ct_eq(&purse::tac(&self.alg, &dtk, input), tac)
    }
}

#[cfg(test)]
mod tests {
    use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};

    use super::{TacVerifier, purchase_tac_input, verify_tac};

    /// e-purse.md §8.2 (3DES) and §8.3 (SM4): the purchase TACs under the §8 master TAC key.
    #[test]
    fn verifier_agrees_with_the_one_shot_check_on_the_brief_examples() {
        let master = PurseKey::from_bytes([
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD,
            0xEE, 0xFF,
        ]);
        let div = [0x10, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78];
        let terminal = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
        let when = [0x20, 0x24, 0x01, 0x15, 0x10, 0x35, 0x00];
        let input = purchase_tac_input(200, 0x06, &terminal, 1, &when);
        for (alg, tac) in [
            (PurseAlgorithm::Tdes, [0x78, 0x7B, 0xD5, 0x17]),
            (
                PurseAlgorithm::Sm4(Sm4Rules::BRIEF),
                [0x3E, 0x66, 0xEC, 0x34],
            ),
        ] {
            let verifier = TacVerifier::new(alg, &master);
            assert!(verifier.verify(&div, &input, &tac), "{alg:?}");
            assert!(verify_tac(&alg, &master, &div, &input, &tac), "{alg:?}");
            let mut bad = tac;
            bad[3] ^= 1;
            assert!(!verifier.verify(&div, &input, &bad), "{alg:?}");
            let mut other = div;
            other[0] ^= 0x80;
            assert!(!verifier.verify(&other, &input, &tac), "{alg:?}");
        }
    }
}

//! The four-character result codes of responses (tsm-gp.md §7 "Error codes"; the JT/T
//! "business response info component" analogue) and the HTTP status each maps to.
//!
//! The brief's codes are kept as it lists them. \[PROPOSAL\] codes the brief does not list but the
//! envelope needs (`1004`–`1008`, `3006`, `5003`, `5004`) are marked in their docs; they are all
//! here and nowhere else.

use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($($(#[$m:meta])* $name:ident = $code:literal, $status:literal;)*) => {
        /// A result code. This list is complete for this version of the protocol.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[allow(clippy::exhaustive_enums)]
        pub enum Code {
            $($(#[$m])* #[serde(rename = $code)] $name,)*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The four characters.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => $code,)* }
            }

            /// The code for four characters.
            pub fn parse(s: &str) -> Option<Code> {
                match s { $($code => Some(Code::$name),)* _ => None }
            }

            /// The HTTP status a response with this code carries.
            pub fn http_status(self) -> u16 {
                match self { $(Code::$name => $status,)* }
            }
        }
    };
}

codes! {
    /// Success.
    Ok = "0000", 200;
    /// The signature does not verify.
    BadSignature = "1001", 401;
    /// The sender is not known (no enrolled device, no configured platform).
    UnknownSender = "1002", 401;
    /// The `request_id` was used before with another body.
    Duplicate = "1003", 409;
    /// \[PROPOSAL\] The timestamp is outside the replay window.
    Stale = "1004", 401;
    /// \[PROPOSAL\] This exact message (sender, nonce) was accepted before.
    Replayed = "1005", 409;
    /// \[PROPOSAL\] The message is malformed (not JSON, a member missing or of the wrong type,
    /// unknown `msg_type`, wrong `receiver_id`).
    BadRequest = "1006", 400;
    /// \[PROPOSAL\] The sender may not do this (another device's card or flow).
    Forbidden = "1007", 403;
    /// \[PROPOSAL\] The same request is still being processed; retry later.
    InProgress = "1008", 409;
    /// The SE is not known.
    SeNotFound = "2001", 404;
    /// The SE is locked or terminated.
    SeLocked = "2002", 409;
    /// The SE has not enough memory.
    SeMemory = "2003", 507;
    /// The SSD exists already.
    SsdExists = "3001", 409;
    /// The SSD is missing.
    SsdMissing = "3002", 409;
    /// The application exists already.
    AppExists = "3003", 409;
    /// The application is missing.
    AppMissing = "3004", 404;
    /// The card instance or flow is in a state that does not allow this.
    StateConflict = "3005", 409;
    /// \[PROPOSAL\] No flow (transaction) with this id.
    FlowNotFound = "3006", 404;
    /// An APDU's status word was not the expected one.
    ApduError = "4001", 422;
    /// A cryptogram (MAC1, card cryptogram, TAC) did not verify.
    CryptogramMismatch = "4002", 422;
    /// A delegated-management receipt did not verify.
    ReceiptInvalid = "4003", 422;
    /// The issuer (or payment provider) declined.
    IssuerDeclined = "5001", 402;
    /// The balance is not zero.
    BalanceNotZero = "5002", 409;
    /// \[PROPOSAL\] No order with this id.
    OrderNotFound = "5003", 404;
    /// \[PROPOSAL\] The order is not paid (yet).
    NotPaid = "5004", 402;
    /// Internal error (details in the server's log only).
    Internal = "9999", 500;
}

impl core::fmt::Display for Code {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_four_digits_unique_and_parse_back() {
        let mut seen = std::collections::BTreeSet::new();
        for &c in Code::ALL {
            let s = c.as_str();
            assert_eq!(s.len(), 4);
            assert!(s.bytes().all(|b| b.is_ascii_digit()));
            assert!(seen.insert(s), "{s} twice");
            assert_eq!(Code::parse(s), Some(c));
            assert_eq!(serde_json::to_string(&c).ok(), Some(format!("\"{s}\"")));
            let status = c.http_status();
            assert_eq!(status == 200, c == Code::Ok, "{s}");
        }
        assert_eq!(Code::parse("0001"), None);
    }
}

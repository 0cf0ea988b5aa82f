//! [`HttpSeiLink`]: the inter-platform API over HTTP with [`TsmClient`] (blocking `ureq`).

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use ykt_crypto::Sm2PublicKey;
use ykt_envelope::{Code, Envelope, Header, PeerKey, Signer};
use ykt_tsm::api::MessageDef;

use super::remote::{LinkError, SeiLink};
use crate::http::{ClientError, Clock, TsmClient, proposals as http_proposals};

/// The SP platform's link to the SEI-TSM at a URL: each call one envelope signed by the SP,
/// each answer verified under the SEI's pinned key (sender, receiver, request id, message type
/// and clock window too) before its result is believed.
pub struct HttpSeiLink {
    client: TsmClient,
    sp_id: String,
    sei_id: String,
    sei_key: Sm2PublicKey,
    signer: Arc<dyn Signer + Send + Sync>,
    clock: Clock,
}

impl fmt::Debug for HttpSeiLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSeiLink")
            .field("url", &self.client.base_url())
            .field("sp_id", &self.sp_id)
            .field("sei_id", &self.sei_id)
            .finish_non_exhaustive()
    }
}

fn random(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    ykt_tsm::Entropy::fill(&mut crate::engine::OsEntropy, &mut out);
    out
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl HttpSeiLink {
    /// The link from the SP platform `sp_id` (signing with `signer`) to the SEI-TSM `sei_id`
    /// at `sei_url`, whose envelopes verify under `sei_key`.
    pub fn new(
        sei_url: &str,
        sei_id: impl Into<String>,
        sei_key: Sm2PublicKey,
        sp_id: impl Into<String>,
        signer: Arc<dyn Signer + Send + Sync>,
    ) -> Result<Self, ClientError> {
        Ok(Self::over(
            TsmClient::new(sei_url)?,
            sei_id,
            sei_key,
            sp_id,
            signer,
        ))
    }

    /// The same over `client`: a [`TsmClient::with_tls`] of the SEI-TSM's address with the pins
    /// of its TLS key, or a plain-HTTP client for tests.
    pub fn over(
        client: TsmClient,
        sei_id: impl Into<String>,
        sei_key: Sm2PublicKey,
        sp_id: impl Into<String>,
        signer: Arc<dyn Signer + Send + Sync>,
    ) -> Self {
        Self {
            client,
            sp_id: sp_id.into(),
            sei_id: sei_id.into(),
            sei_key,
            signer,
            clock: Arc::new(system_now),
        }
    }

    /// The same with another clock (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn checked(&self, def: MessageDef, sent: &Envelope, answer: &Envelope) -> Result<(), String> {
        answer
            .verify(&PeerKey::Sm2(self.sei_key.clone()))
            .map_err(|e| format!("the answer does not verify: {e}"))?;
        answer
            .check_time((self.clock)(), http_proposals::CLOCK_WINDOW_MS)
            .map_err(|e| format!("the answer's time: {e}"))?;
        if answer.sender_id != self.sei_id
            || answer.receiver_id != self.sp_id
            || answer.request_id != sent.request_id
        {
            return Err("the answer is not for this request".into());
        }
        if answer.msg_type != def.response && answer.code() == Some(Code::Ok) {
            return Err("the answer has another message type".into());
        }
        Ok(())
    }
}

impl SeiLink for HttpSeiLink {
    fn call(&self, def: MessageDef, body: Value) -> Result<Value, LinkError> {
        let id = hex::encode_upper(random(16));
        let header = Header {
            msg_type: def.request.into(),
            msg_no: def.msg_no.into(),
            sender_id: self.sp_id.clone(),
            receiver_id: self.sei_id.clone(),
            txn_id: id.clone(),
            request_id: id,
        };
        let nonce = random(http_proposals::NONCE_LEN);
        let request = Envelope::seal(&header, &body, None, &nonce, (self.clock)(), &*self.signer)
            .map_err(|e| LinkError::Transport(format!("sealing the request: {e}")))?;
        let answer = self
            .client
            .send(&request)
            .map_err(|e| LinkError::Transport(e.to_string()))?;
        self.checked(def, &request, &answer)
            .map_err(LinkError::Transport)?;
        match answer.result {
            Some(r) if r.code == Code::Ok => Ok(answer.body),
            // The SEI's own failure or a request still in its hands: try again later.
            Some(r) if matches!(r.code, Code::Internal | Code::InProgress) => {
                Err(LinkError::Transport(format!("the SEI answered {}", r.code)))
            }
            Some(r) => Err(LinkError::Refused {
                code: r.code,
                msg: r.msg,
            }),
            None => Err(LinkError::Transport("the answer has no result".into())),
        }
    }
}

//! The host's derived-session-key path (`HostSession::initialize_update_derived` with a
//! `SessionKeyDeriver`) against the static-key path on the published vectors: the same
//! INITIALIZE UPDATE, EXTERNAL AUTHENTICATE and wrapped commands, byte for byte.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::{AesKey, BlockCipherKey, TdesKey, cmac_aes};
use ykt_scp::*;
use zeroize::Zeroizing;

use crate::harness::{Case, cases, hx};

/// A stand-in key store: raw static key bytes kept apart from ykt-scp, answering only the
/// block operations of `StaticKeyOperation`, and counting them.
struct Store {
    tdes: bool,
    keys: [Vec<u8>; 3],
    calls: Vec<StaticKeyRole>,
}

impl Store {
    fn key(&self, role: StaticKeyRole) -> &[u8] {
        match role {
            StaticKeyRole::Enc => &self.keys[0],
            StaticKeyRole::Mac => &self.keys[1],
            StaticKeyRole::Dek => &self.keys[2],
        }
    }
}

impl SessionKeyDeriver for Store {
    fn compute(
        &mut self,
        operation: &StaticKeyOperation<'_>,
    ) -> Result<Zeroizing<[u8; 16]>, DeriverError> {
        match *operation {
            StaticKeyOperation::TdesCbc { key, data } if self.tdes => {
                self.calls.push(key);
                let k = TdesKey::from_slice(self.key(key)).unwrap();
                let mut out = Zeroizing::new(*data);
                k.cbc_encrypt_in_place(&[0u8; 8], &mut out[..]).unwrap();
                Ok(out)
            }
            StaticKeyOperation::Cmac { key, data } if !self.tdes => {
                self.calls.push(key);
                let k = AesKey::from_slice(self.key(key)).unwrap();
                Ok(Zeroizing::new(cmac_aes(&k, data)))
            }
            _ => Err(DeriverError),
        }
    }
}

/// Refuses everything.
struct Broken;

impl SessionKeyDeriver for Broken {
    fn compute(&mut self, _: &StaticKeyOperation<'_>) -> Result<Zeroizing<[u8; 16]>, DeriverError> {
        Err(DeriverError)
    }
}

fn ok(data: Vec<u8>) -> ResponseApdu {
    ResponseApdu::new(data, StatusWord::SUCCESS)
}

/// Runs one session on both paths and gives (IU, EA, wrapped commands) of each.
#[allow(clippy::too_many_arguments)]
fn both_paths(
    static_keys: KeySet,
    store: &mut Store,
    protocol: Protocol,
    level: SecurityLevel,
    aid: Option<Vec<u8>>,
    iu: &CommandApdu,
    resp: &[u8],
    plains: &[CommandApdu],
) -> [(CommandApdu, CommandApdu, Vec<CommandApdu>); 2] {
    let kind = StaticKeyKind::of(&static_keys);
    let mut run = |derived: bool| {
        let (mut host, cmd) = if derived {
            HostSession::initialize_update_derived(
                DerivedHostConfig {
                    key_version: iu.p1,
                    key_kind: kind,
                    protocol,
                    level,
                    security_domain_aid: aid.clone(),
                },
                &iu.data,
            )
        } else {
            let mut keys = static_keys.clone();
            keys.version = iu.p1;
            HostSession::initialize_update(
                HostConfig {
                    keys,
                    protocol,
                    level,
                    security_domain_aid: aid.clone(),
                },
                &iu.data,
            )
        }
        .unwrap();
        let ea = if derived {
            host.on_initialize_update_response_derived(&ok(resp.to_vec()), store)
        } else {
            host.on_initialize_update_response(&ok(resp.to_vec()))
        }
        .unwrap();
        host.on_external_authenticate_response(&ResponseApdu::status(StatusWord::SUCCESS))
            .unwrap();
        let wrapped = plains.iter().map(|p| host.wrap(p).unwrap()).collect();
        (cmd, ea, wrapped)
    };
    [run(false), run(true)]
}

fn check(c: &Case, runs: &[(CommandApdu, CommandApdu, Vec<CommandApdu>); 2], iu: &CommandApdu) {
    for (cmd, ea, wrapped) in runs {
        assert_eq!(cmd, iu, "{}", c.location);
        assert_eq!(hx(&ea.to_bytes()), hx(&c.bytes("external_authenticate")));
        for (i, w) in wrapped.iter().enumerate() {
            let want = c.bytes(&format!("command{}", i + 1));
            assert_eq!(
                hx(&w.to_bytes()),
                hx(&want),
                "{} command{}",
                c.location,
                i + 1
            );
        }
    }
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn scp03_sessions_derived_equal_static() {
    for c in cases("scp03_kaoh-sessions.txt") {
        let resp = c.bytes("initialize_update_response");
        let iu = c.command("initialize_update");
        let protocol = Protocol::scp03(resp[12]).unwrap();
        let level = SecurityLevel::from_byte(c.byte("level")).unwrap();
        let keys = KeySet::aes(
            iu.p1,
            AesKey::from_slice(&c.bytes("enc")).unwrap(),
            AesKey::from_slice(&c.bytes("mac")).unwrap(),
            AesKey::from_slice(&c.bytes("dek")).unwrap(),
        );
        let mut store = Store {
            tdes: false,
            keys: [c.bytes("enc"), c.bytes("mac"), c.bytes("dek")],
            calls: Vec::new(),
        };
        let n: usize = c.text("commands").parse().unwrap();
        let plains: Vec<_> = (1..=n)
            .map(|i| c.command(&format!("command{i}_plain")))
            .collect();
        let aid = c.optional_bytes("aid");
        let runs = both_paths(
            keys,
            &mut store,
            protocol,
            level,
            aid.clone(),
            &iu,
            &resp,
            &plains,
        );
        check(&c, &runs, &iu);
        // S-ENC (and the challenge, when checked) under K-ENC, S-MAC and S-RMAC under K-MAC,
        // one CMAC block each for 128- and 192-bit keys... never K-DEK.
        assert!(!store.calls.contains(&StaticKeyRole::Dek));
        assert!(store.calls.contains(&StaticKeyRole::Enc));
        assert!(store.calls.contains(&StaticKeyRole::Mac));
        let blocks = c.bytes("enc").len().div_ceil(16);
        let challenge = usize::from(aid.is_some() && protocol.pseudo_random_challenge());
        assert_eq!(store.calls.len(), 3 * blocks + challenge, "{}", c.location);
    }
}

#[test]
fn scp02_sessions_derived_equal_static() {
    for c in cases("scp02_kaoh-globalplatform.txt") {
        let resp = c.bytes("initialize_update_response");
        let iu = c.command("initialize_update");
        let key = || TdesKey::from_slice(&c.bytes("key")).unwrap();
        let keys = KeySet::tdes(resp[10], key(), key(), key());
        let protocol = Protocol::scp02(0x15).unwrap();
        let level = SecurityLevel::from_byte(c.byte("level")).unwrap();
        // The plain commands, from the card role (as the static-path vector test does).
        let mut card = CardSession::new(CardConfig {
            protocol,
            aid: vec![0xA0, 0, 0, 0, 3, 0, 0, 0],
            key_diversification_data: resp[..10].try_into().unwrap(),
            minimum_level: SecurityLevel::C_MAC,
        });
        let seq = u32::from(u16::from_be_bytes([resp[12], resp[13]]));
        card.on_initialize_update(&iu, &keys, seq, &resp[14..20])
            .unwrap();
        card.on_external_authenticate(&c.command("external_authenticate"))
            .unwrap();
        let n: usize = c.text("commands").parse().unwrap();
        let plains: Vec<_> = (1..=n)
            .map(|i| {
                card.unwrap_command(&c.command(&format!("command{i}")))
                    .unwrap()
            })
            .collect();
        let mut store = Store {
            tdes: true,
            keys: [c.bytes("key"), c.bytes("key"), c.bytes("key")],
            calls: Vec::new(),
        };
        let runs = both_paths(keys, &mut store, protocol, level, None, &iu, &resp, &plains);
        check(&c, &runs, &iu);
        assert_eq!(
            store.calls,
            [StaticKeyRole::Enc, StaticKeyRole::Mac, StaticKeyRole::Dek]
        );
    }
}

/// SCP02 (pysim, ICV encryption): wrapped commands and the session DEK of the derived session
/// equal the static one's and the vector's.
#[test]
fn scp02_pysim_derived_session_dek() {
    let c = &cases("scp02_pysim.txt")[0];
    let iu = c.command("initialize_update");
    let resp = c.bytes("initialize_update_response");
    let tdes = |k: &str| TdesKey::from_slice(&c.bytes(k)).unwrap();
    let keys = KeySet::tdes(iu.p1, tdes("enc"), tdes("mac"), tdes("dek"));
    let protocol = Protocol::scp02(c.byte("i")).unwrap();
    let level = SecurityLevel::C_MAC;
    let mut store = Store {
        tdes: true,
        keys: [c.bytes("enc"), c.bytes("mac"), c.bytes("dek")],
        calls: Vec::new(),
    };
    let mut open = |derived: bool| {
        let (mut host, _) = if derived {
            HostSession::initialize_update_derived(
                DerivedHostConfig {
                    key_version: iu.p1,
                    key_kind: StaticKeyKind::Tdes,
                    protocol,
                    level,
                    security_domain_aid: None,
                },
                &iu.data,
            )
        } else {
            HostSession::initialize_update(
                HostConfig {
                    keys: keys.clone(),
                    protocol,
                    level,
                    security_domain_aid: None,
                },
                &iu.data,
            )
        }
        .unwrap();
        let ea = if derived {
            host.on_initialize_update_response_derived(&ok(resp.clone()), &mut store)
        } else {
            host.on_initialize_update_response(&ok(resp.clone()))
        }
        .unwrap();
        host.on_external_authenticate_response(&ResponseApdu::status(StatusWord::SUCCESS))
            .unwrap();
        let wrapped: Vec<_> = ["case1", "case2", "case3", "case4"]
            .iter()
            .map(|s| host.wrap(&c.command(&format!("{s}_plain"))).unwrap())
            .collect();
        let dek = host.scp02_session_dek().unwrap().expose().to_vec();
        (ea, wrapped, dek)
    };
    let a = open(false);
    let b = open(true);
    assert_eq!(hx(&a.0.to_bytes()), hx(&c.bytes("external_authenticate")));
    assert_eq!(hx(&a.2), hx(&c.bytes("s_dek")));
    for (i, w) in a.1.iter().enumerate() {
        assert_eq!(hx(&w.to_bytes()), hx(&c.bytes(&format!("case{}", i + 1))));
    }
    assert_eq!(a, b);
}

#[test]
fn a_failing_deriver_closes_the_session() {
    let c = &cases("scp03_kaoh-sessions.txt")[0];
    let iu = c.command("initialize_update");
    let resp = c.bytes("initialize_update_response");
    let config = DerivedHostConfig {
        key_version: iu.p1,
        key_kind: StaticKeyKind::Aes(16),
        protocol: Protocol::scp03(resp[12]).unwrap(),
        level: SecurityLevel::from_byte(c.byte("level")).unwrap(),
        security_domain_aid: c.optional_bytes("aid"),
    };
    let (mut host, _) = HostSession::initialize_update_derived(config.clone(), &iu.data).unwrap();
    let err = host
        .on_initialize_update_response_derived(&ok(resp.clone()), &mut Broken)
        .unwrap_err();
    assert_eq!(err, ScpError::Deriver);
    assert!(!host.is_open());
    assert_eq!(host.wrap(&iu).unwrap_err(), ScpError::Closed);
    // A derived session answered without a deriver, and a wrong key kind, are refused.
    let (mut host, _) = HostSession::initialize_update_derived(config.clone(), &iu.data).unwrap();
    assert_eq!(
        host.on_initialize_update_response(&ok(resp)).unwrap_err(),
        ScpError::Parameter(ParameterError::KeyTypeMismatch)
    );
    let wrong = DerivedHostConfig {
        key_kind: StaticKeyKind::Tdes,
        ..config
    };
    assert!(HostSession::initialize_update_derived(wrong, &iu.data).is_err());
}

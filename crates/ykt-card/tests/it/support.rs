//! The test applet, its factory, and card builders shared by the test modules.

use ykt_apdu::{CommandApdu, StatusWord, tlv::Tlv};
use ykt_card::{
    Access, Aid, Applet, AppletFactory, Atr, Card, CardError, Context, EfSpec, EfStructure,
    ObjectId, SeededRandom, Selected,
};

pub const KIND: &str = "ykt.test";
pub const AID_A: &str = "A000000632010105";
pub const AID_B: &str = "A00000063201010510009156000014A1";
pub const AID_C: &str = "A00000000386980701";

const COUNTER: ObjectId = ObjectId(1);
const BLOB: ObjectId = ObjectId(2);
const SMALL: ObjectId = ObjectId(3);
const MIDDLE: ObjectId = ObjectId(4);
const FLAGS: ObjectId = ObjectId(5);

/// A small applet exercising the runtime. Proprietary commands (CLA 80):
///
/// * `10 k 00` multi-write: counter += 1, blob (100 bytes) := k, small (3) := k,k+1,k+2,
///   middle[10..30] := k^55, append record [k; 23] to cyclic EF18; with P2 = 01 it returns the
///   new counter;
/// * `12 00 00 02 nnnn` returns nnnn bytes 00 01 02 ... (mod 256);
/// * `14` dump of every object and file;
/// * `16` writes, then fails with 6985;
/// * `18` counter += 1, commit early, blob := FF, then fails with 6985;
/// * `1C` fails with 9000 (a fault), `1E` fails with 1234 (no status word);
/// * `30 00 00 Lc (obj offset len byte)*` writes `len` times `byte` at `offset` of each object;
/// * `42 sw1 sw2 02 nnnn` multi-write with k = 40, then `ctx.set_warning(sw1 sw2)` and returns
///   nnnn bytes 00 01 02 ... (mod 256); without data (case 2) nnnn is 4;
/// * `20 f 00` sets the select flags: 01 = answer SELECT with FCI + 6A81, 02 = refuse SELECT with 6985.
///
/// Interindustry `00 84 00 00` returns 8 random bytes (GET CHALLENGE shape).
pub struct TestApplet {
    aid: Aid,
    challenge: Option<[u8; 8]>,
}

impl TestApplet {
    pub fn new(aid: &str) -> Self {
        Self {
            aid: Aid::new(&hex::decode(aid).unwrap()).unwrap(),
            challenge: None,
        }
    }

    /// The installation `init`: objects and files.
    pub fn init(aid: &Aid) -> impl FnOnce(&mut Context<'_>) -> Result<(), StatusWord> + use<> {
        let aid = aid.clone();
        move |ctx| {
            ctx.create(COUNTER, &[0; 4])?;
            ctx.create(BLOB, &[0; 100])?;
            ctx.create(SMALL, &[0; 3])?;
            ctx.create(MIDDLE, &[0x11; 40])?;
            ctx.create(FLAGS, &[0])?;
            let mut files = ctx.files();
            let ef = |fid, sfi, structure, read, update| EfSpec {
                fid,
                sfi,
                structure,
                read,
                update,
            };
            files.create_ef(ef(
                0x0015,
                Some(0x15),
                EfStructure::Transparent { size: 30 },
                Access::Always,
                Access::Always,
            ))?;
            files.create_ef(ef(
                0x0016,
                Some(0x16),
                EfStructure::Transparent { size: 40 },
                Access::Always,
                Access::Never,
            ))?;
            files.create_ef(ef(
                0x0018,
                Some(0x18),
                EfStructure::Cyclic {
                    record_len: 23,
                    records: 3,
                },
                Access::Always,
                Access::Applet,
            ))?;
            files.create_ef(ef(
                0x0019,
                Some(0x19),
                EfStructure::LinearFixed {
                    record_len: 4,
                    records: 2,
                },
                Access::Always,
                Access::Always,
            ))?;
            files.create_ef(ef(
                0x001A,
                Some(0x1A),
                EfStructure::Transparent { size: 600 },
                Access::Always,
                Access::Always,
            ))?;
            files.create_ef(ef(
                0x0005,
                None,
                EfStructure::Transparent { size: 8 },
                Access::Never,
                Access::Never,
            ))?;
            let bytes = aid.as_bytes();
            files.write_binary(0x15, 0, &bytes[bytes.len().saturating_sub(8)..])?;
            let pattern: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
            files.write_binary(0x1A, 0, &pattern)?;
            Ok(())
        }
    }

    fn multi_write(ctx: &mut Context<'_>, k: u8) -> Result<(), StatusWord> {
        let c = u32::from_be_bytes(ctx.read(COUNTER)?.try_into().unwrap());
        ctx.write(COUNTER, 0, &(c + 1).to_be_bytes())?;
        ctx.write(BLOB, 0, &[k; 100])?;
        ctx.write(SMALL, 0, &[k, k.wrapping_add(1), k.wrapping_add(2)])?;
        ctx.write(MIDDLE, 10, &[k ^ 0x55; 20])?;
        ctx.files().append_cyclic(0x18, &[k; 23])
    }

    fn dump(ctx: &mut Context<'_>) -> Result<Vec<u8>, StatusWord> {
        let mut out = Vec::new();
        for obj in [COUNTER, BLOB, SMALL, MIDDLE, FLAGS] {
            out.extend_from_slice(ctx.read(obj)?);
        }
        let mut files = ctx.files();
        out.extend(files.read_binary(0x15, 0, 30)?);
        out.extend(files.read_binary(0x16, 0, 40)?);
        out.extend(files.read_binary(0x1A, 0, 600)?);
        for sfi in [0x18, 0x19] {
            let n = files.record_count(sfi)?;
            out.push(n);
            for r in 1..=n {
                out.extend(files.read_record(sfi, r)?);
            }
        }
        Ok(out)
    }
}

impl Applet for TestApplet {
    fn aid(&self) -> &Aid {
        &self.aid
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn install_params(&self) -> Vec<u8> {
        self.aid.as_bytes().to_vec()
    }

    fn select(&mut self, ctx: &mut Context<'_>) -> Result<Selected, StatusWord> {
        let fci = Tlv::constructed(0x6F, &[Tlv::new(0x84, self.aid.as_bytes())]).to_bytes();
        match ctx.read(FLAGS)?[0] {
            0x01 => Ok(Selected {
                fci,
                sw: StatusWord::FUNCTION_NOT_SUPPORTED,
            }),
            0x02 => Err(StatusWord::CONDITIONS_NOT_SATISFIED),
            _ => Ok(Selected::ok(fci)),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        match (cmd.cla, cmd.ins) {
            (0x00, 0x84) => {
                let mut c = [0u8; 8];
                ctx.random(&mut c);
                self.challenge = Some(c);
                Ok(c.to_vec())
            }
            (0x80, 0x10) => {
                Self::multi_write(ctx, cmd.p1)?;
                Ok(if cmd.p2 == 1 {
                    ctx.read(COUNTER)?.to_vec()
                } else {
                    Vec::new()
                })
            }
            (0x80, 0x12) => {
                let [hi, lo] = cmd.data[..] else {
                    return Err(StatusWord::WRONG_LENGTH);
                };
                Ok((0..u16::from_be_bytes([hi, lo]))
                    .map(|i| (i & 0xFF) as u8)
                    .collect())
            }
            (0x80, 0x14) => Self::dump(ctx),
            (0x80, 0x16) => {
                Self::multi_write(ctx, 0xEE)?;
                Err(StatusWord::CONDITIONS_NOT_SATISFIED)
            }
            (0x80, 0x18) => {
                let c = u32::from_be_bytes(ctx.read(COUNTER)?.try_into().unwrap());
                ctx.write(COUNTER, 0, &(c + 1).to_be_bytes())?;
                ctx.commit()?;
                ctx.write(BLOB, 0, &[0xFF; 100])?;
                Err(StatusWord::CONDITIONS_NOT_SATISFIED)
            }
            (0x80, 0x30) => {
                // Scripted writes: (object 1..=4, offset, length, byte) quadruples.
                for op in cmd.data.chunks(4) {
                    let &[obj, offset, len, byte] = op else {
                        return Err(StatusWord::WRONG_LENGTH);
                    };
                    ctx.write(
                        ObjectId(u16::from(obj)),
                        usize::from(offset),
                        &vec![byte; usize::from(len)],
                    )?;
                }
                Ok(Vec::new())
            }
            (0x80, 0x42) => {
                let [hi, lo] = match cmd.data[..] {
                    [] => [0, 4],
                    [hi, lo] => [hi, lo],
                    _ => return Err(StatusWord::WRONG_LENGTH),
                };
                Self::multi_write(ctx, 0x40)?;
                ctx.set_warning(StatusWord::new(cmd.p1, cmd.p2));
                Ok((0..u16::from_be_bytes([hi, lo]))
                    .map(|i| (i & 0xFF) as u8)
                    .collect())
            }
            (0x80, 0x1C) => Err(StatusWord::SUCCESS),
            (0x80, 0x1E) => Err(StatusWord(0x1234)),
            (0x80, 0x20) => ctx.write(FLAGS, 0, &[cmd.p1]).map(|()| Vec::new()),
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }

    fn install(&mut self, ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        Self::init(&self.aid)(ctx)
    }

    /// Data from a card manager: `k`: multi-write with k, returns the new counter; empty data
    /// refused with 6A80.
    fn process_data(
        &mut self,
        ctx: &mut Context<'_>,
        cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        let [k] = cmd.data[..] else {
            return Err(StatusWord::WRONG_DATA);
        };
        Self::multi_write(ctx, k)?;
        Ok(ctx.read(COUNTER)?.to_vec())
    }

    fn reset_volatile(&mut self) {
        self.challenge = None;
    }
}

/// Re-creates test applets on load; knows only [`KIND`].
pub struct Factory;

impl AppletFactory for Factory {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        (kind == KIND && params == aid.as_bytes()).then(|| {
            Box::new(TestApplet {
                aid: aid.clone(),
                challenge: None,
            }) as Box<dyn Applet + Send>
        })
    }
}

pub fn install(card: &mut Card, aid: &str) -> Result<(), CardError> {
    let applet = TestApplet::new(aid);
    let init = TestApplet::init(applet.aid());
    card.install(Box::new(applet), init)
}

/// A powered card with applets A, B and C installed (in that order).
pub fn card() -> Card {
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(7)));
    for aid in [AID_A, AID_B, AID_C] {
        install(&mut card, aid).unwrap();
    }
    card.power_on();
    card
}

/// Sends hex, returns the response (panics on a card error).
pub fn send(card: &mut Card, hex_cmd: &str) -> Vec<u8> {
    let cmd = hex::decode(hex_cmd.replace(' ', "")).unwrap();
    card.transmit(&cmd)
        .unwrap_or_else(|e| panic!("{hex_cmd}: {e}"))
}

/// Sends hex and asserts a 9000 ending; returns the data.
pub fn ok(card: &mut Card, hex_cmd: &str) -> Vec<u8> {
    let mut r = send(card, hex_cmd);
    assert_eq!(
        &r[r.len() - 2..],
        &[0x90, 0x00],
        "{hex_cmd} -> {}",
        hex::encode_upper(&r)
    );
    r.truncate(r.len() - 2);
    r
}

pub fn select(card: &mut Card, aid: &str) -> Vec<u8> {
    ok(card, &format!("00A40400{:02X}{aid}", aid.len() / 2))
}

/// Every object and file of the applet `aid` (selects it).
pub fn dump(card: &mut Card, aid: &str) -> Vec<u8> {
    select(card, aid);
    ok(card, "80140000000000")
}

/// Copies a card through its state file.
pub fn clone_card(card: &Card) -> Card {
    Card::load_state(
        &card.save_state(),
        Atr::default_t1(),
        Box::new(SeededRandom::new(7)),
        &Factory,
    )
    .unwrap()
}

//! Balance and records read offline on the SE (client.md §2), without the TSM.

use super::*;

impl Wallet {
    fn offline(
        &mut self,
        links: &mut Links<'_>,
        card: &CardNo,
        commands: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, WalletError> {
        let record = self.card_record(card)?;
        let mut select = vec![0x00, 0xA4, 0x04, 0x00];
        select.push(u8::try_from(record.app_aid.as_bytes().len()).unwrap_or(0x10));
        select.extend_from_slice(record.app_aid.as_bytes());
        select.push(0x00);
        let mut capdus = vec![Hex(select)];
        capdus.extend(commands.into_iter().map(Hex));
        let relay = RelayRequest {
            session_id: String::new(),
            seq: 0,
            expect: capdus.iter().map(|_| Expect::success()).collect(),
            capdus,
            last: true,
        };
        let answer = relay_over(links.se, &relay)?;
        Ok(answer.rapdus.into_iter().map(|r| r.0).collect())
    }

    /// The balance read offline on the SE (client.md §2): SELECT the card's AID, GET BALANCE
    /// `80 5C 00 02 04` (e-purse.md §4.2). Kept as the card's last known balance.
    pub fn balance(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        card: &CardNo,
    ) -> Result<u32, WalletError> {
        (links.progress)(Progress {
            step: "balance".into(),
            index: 0,
            count: 1,
        });
        let rapdus = self.offline(links, card, vec![vec![0x80, 0x5C, 0x00, 0x02, 0x04]])?;
        for r in &rapdus {
            let sw = sw_of(r);
            if sw != [0x90, 0x00] {
                return Err(WalletError::CardRefused { sw });
            }
        }
        let balance = match rapdus.get(1).map(Vec::as_slice) {
            Some([a, b, c, d, 0x90, 0x00]) => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => return Err(WalletError::CardRefused { sw: [0x6F, 0x00] }),
        };
        if let Some(c) = self.state.cards.iter_mut().find(|c| &c.card_no == card) {
            c.balance = Some((balance, now_ms));
        }
        links.persist.persist(&self.state)?;
        Ok(balance)
    }

    /// The transaction log read offline (client.md §2): SELECT the card's AID, then READ
    /// RECORD `00 B2 n C4 17` of EF18 (e-purse.md §2), newest first, until the card has no more
    /// (`6A83`).
    pub fn records(
        &mut self,
        links: &mut Links<'_>,
        card: &CardNo,
    ) -> Result<Vec<TransactionRecord>, WalletError> {
        let p2 = (ykt_purse::files::SFI_EF18 << 3) | 0x04;
        let le = u8::try_from(ykt_purse::files::EF18_RECORD_LEN).unwrap_or(0);
        let commands = (1..=proposals::MAX_RECORDS)
            .map(|n| vec![0x00, 0xB2, n, p2, le])
            .collect();
        (links.progress)(Progress {
            step: "records".into(),
            index: 0,
            count: 1,
        });
        let rapdus = self.offline(links, card, commands)?;
        let mut out = Vec::new();
        for (i, r) in rapdus.iter().enumerate() {
            let sw = sw_of(r);
            match sw {
                [0x90, 0x00] if i > 0 => out.push(
                    TransactionRecord::decode(&r[..r.len() - 2])
                        .ok_or(WalletError::CardRefused { sw })?,
                ),
                [0x90, 0x00] => {}
                // Record not found: the log holds fewer records.
                [0x6A, 0x83] if i > 0 => break,
                _ => return Err(WalletError::CardRefused { sw }),
            }
        }
        Ok(out)
    }
}

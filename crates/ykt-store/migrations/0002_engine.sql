-- ykt-store schema, version 2: what the TSM service's flow engine records besides version 1.
--
-- Same rules as 0001: TEXT and BIGINT only, byte strings as lowercase hex, times as Unix
-- milliseconds, flags as 0/1. Added columns carry no REFERENCES (SQLite cannot add them to an
-- existing table with data). No column holds a key value.

-- Enrolled devices: the SM2 public key their envelopes verify under (SEC1 hex), one id per key.
CREATE TABLE device (
    device_id  TEXT   NOT NULL PRIMARY KEY,
    public_key TEXT   NOT NULL UNIQUE,
    model      TEXT   NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Named counters (card numbers): each value is handed out once and never again.
CREATE TABLE counter (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);

-- Who started a flow.
ALTER TABLE flow ADD COLUMN device_id TEXT;
CREATE INDEX flow_by_device ON flow (device_id);

-- Who holds a card instance, how its SSD is managed, and the flow working on it (NULL: none).
ALTER TABLE card_instance ADD COLUMN device_id TEXT;
ALTER TABLE card_instance ADD COLUMN management TEXT;
ALTER TABLE card_instance ADD COLUMN flow_id TEXT;
CREATE INDEX card_instance_by_device ON card_instance (device_id);

-- Top-up orders of the engine (CREATED → PAID → LOAD_REQUESTED → LOADED): who ordered, the
-- payment channel, the flow loading it (claimed once) and the balance after the load.
ALTER TABLE topup_order ADD COLUMN device_id TEXT;
ALTER TABLE topup_order ADD COLUMN pay_channel TEXT;
ALTER TABLE topup_order ADD COLUMN flow_id TEXT;
ALTER TABLE topup_order ADD COLUMN new_balance BIGINT;

-- Refunds paid (card return), once per refund id.
CREATE TABLE refund (
    refund_id  TEXT   NOT NULL PRIMARY KEY,
    card_no    TEXT   NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen >= 0),
    account    TEXT   NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Balances held for a transfer, once per transfer id; claimed by one transfer-in flow, settled
-- once loaded on the new SE.
CREATE TABLE escrow (
    transfer_id TEXT   NOT NULL PRIMARY KEY,
    card_no     TEXT   NOT NULL,
    amount_fen  BIGINT NOT NULL CHECK (amount_fen >= 0),
    settled     BIGINT NOT NULL CHECK (settled IN (0, 1)),
    claimed_by  TEXT,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL
);

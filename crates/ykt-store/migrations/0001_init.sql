-- ykt-store schema, version 1.
--
-- One file for both dialects (SQLite and PostgreSQL): only TEXT and BIGINT columns, no
-- autoincrement, no booleans, no dialect functions. Byte strings (CPLC, AIDs, hashes) are
-- lowercase hex. Times are Unix milliseconds. Never edit this file once applied: add 0002_….sql.
-- No column holds a key value: card instances record key *versions* only.

-- Secure elements (tsm-gp.md §8: UNKNOWN → REGISTERED → ISD_KEYS_BOUND → ACTIVE → LOST | TERMINATED;
-- UNKNOWN is "no row").
CREATE TABLE se (
    seid       TEXT   NOT NULL PRIMARY KEY,
    cplc       TEXT   NOT NULL,
    profile    TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- Card instances, one per SE × card number (tsm-gp.md §8 card instance life cycle).
CREATE TABLE card_instance (
    seid       TEXT   NOT NULL REFERENCES se (seid),
    card_no    TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    ssd_aid    TEXT,
    app_aid    TEXT,
    version    BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (seid, card_no)
);

-- Key versions a card instance holds, by key set (for example "ssd", "app"). Versions only.
CREATE TABLE card_key_version (
    seid    TEXT   NOT NULL,
    card_no TEXT   NOT NULL,
    key_set TEXT   NOT NULL,
    kvn     BIGINT NOT NULL CHECK (kvn >= 0 AND kvn <= 255),
    PRIMARY KEY (seid, card_no, key_set),
    FOREIGN KEY (seid, card_no) REFERENCES card_instance (seid, card_no)
);

-- Flows (open card, top-up, delete, ...) as persisted state machines with optimistic concurrency.
-- script_seq / script_idempotent: the APDU script released to the client whose result is not
-- yet known (NULL when none).
CREATE TABLE flow (
    id                TEXT   NOT NULL PRIMARY KEY,
    kind              TEXT   NOT NULL,
    seid              TEXT   REFERENCES se (seid),
    step              TEXT   NOT NULL,
    status            TEXT   NOT NULL,
    state             TEXT   NOT NULL,
    script_seq        BIGINT,
    script_idempotent BIGINT CHECK (script_idempotent IN (0, 1)),
    version           BIGINT NOT NULL,
    created_ms        BIGINT NOT NULL,
    updated_ms        BIGINT NOT NULL
);
CREATE INDEX flow_by_status ON flow (status, seid);

-- Idempotency records (tsm-gp.md §7: request_id), per sender.
CREATE TABLE idempotency (
    scope        TEXT   NOT NULL,
    request_id   TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    response     TEXT,
    created_ms   BIGINT NOT NULL,
    completed_ms BIGINT,
    PRIMARY KEY (scope, request_id)
);
CREATE INDEX idempotency_by_age ON idempotency (created_ms);

-- Signed messages seen inside the replay window.
CREATE TABLE seen_message (
    sender     TEXT   NOT NULL,
    message_id TEXT   NOT NULL,
    sent_ms    BIGINT NOT NULL,
    seen_ms    BIGINT NOT NULL,
    PRIMARY KEY (sender, message_id)
);
CREATE INDEX seen_message_by_age ON seen_message (sent_ms);

-- Top-up orders: one per order id and one per payment; one MAC2 per card online counter.
CREATE TABLE topup_order (
    order_id       TEXT   NOT NULL PRIMARY KEY,
    pay_order_id   TEXT   NOT NULL UNIQUE,
    seid           TEXT   NOT NULL,
    card_no        TEXT   NOT NULL,
    amount_fen     BIGINT NOT NULL CHECK (amount_fen > 0),
    state          TEXT   NOT NULL,
    online_counter BIGINT,
    tac            TEXT,
    version        BIGINT NOT NULL,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL,
    FOREIGN KEY (seid, card_no) REFERENCES card_instance (seid, card_no),
    UNIQUE (seid, card_no, online_counter)
);

-- The audit log: append-only, each row hash = SM3(prev_hash ‖ canonical row bytes).
CREATE TABLE audit_log (
    seq       BIGINT NOT NULL PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    kind      TEXT   NOT NULL,
    actor     TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    detail    TEXT   NOT NULL,
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL
);

-- The chain's head: the last sequence number and hash. Appends serialise on this row, and
-- verification compares it with the last row, so a deleted tail shows.
CREATE TABLE audit_head (
    id   BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT   NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

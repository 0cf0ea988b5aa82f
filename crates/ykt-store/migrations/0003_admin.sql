-- ykt-store schema, version 3: the operators' registry (admin API).
--
-- Same rules as 0001/0002: TEXT and BIGINT only, byte strings as lowercase hex, times as Unix
-- milliseconds, flags as 0/1. No column holds a key value: issuers name their purse-issuer key
-- and its version only.

-- Card issuers (EF15 issuer id, city code) and the key they personalise purses under.
CREATE TABLE issuer (
    issuer_id   TEXT   NOT NULL PRIMARY KEY,
    name        TEXT   NOT NULL,
    ef15_issuer TEXT   NOT NULL UNIQUE,
    city_code   TEXT   NOT NULL,
    purse_key   TEXT   NOT NULL,
    key_version BIGINT NOT NULL CHECK (key_version >= 0 AND key_version <= 255),
    created_ms  BIGINT NOT NULL
);

-- Card stock: ranges of card numbers (prefix ‖ 12 BCD digits of the sequence) per issuer.
-- next_seq only goes up; a range is exhausted when next_seq > last_seq.
CREATE TABLE card_stock (
    range_id    TEXT   NOT NULL PRIMARY KEY,
    issuer_id   TEXT   NOT NULL REFERENCES issuer (issuer_id),
    prefix      TEXT   NOT NULL,
    first_seq   BIGINT NOT NULL CHECK (first_seq >= 0),
    last_seq    BIGINT NOT NULL CHECK (last_seq >= first_seq),
    next_seq    BIGINT NOT NULL,
    start_date  TEXT   NOT NULL,
    expiry_date TEXT   NOT NULL,
    created_ms  BIGINT NOT NULL
);
CREATE INDEX card_stock_by_issuer ON card_stock (issuer_id);

-- SE profiles, matched against an SE's CPLC (IC fabricator, IC type, OS id; NULL: any).
CREATE TABLE se_profile (
    name          TEXT   NOT NULL PRIMARY KEY,
    ic_fabricator TEXT   NOT NULL,
    ic_type       TEXT,
    os_id         TEXT,
    memory_kb     BIGINT NOT NULL CHECK (memory_kb >= 0),
    scp           TEXT   NOT NULL,
    delegated     BIGINT NOT NULL CHECK (delegated IN (0, 1)),
    created_ms    BIGINT NOT NULL
);

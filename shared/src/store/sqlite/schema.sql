-- The embedded store's schema (applied at every open; every statement is idempotent).
-- Access patterns and the index serving each: see `store/sqlite/mod.rs`.

CREATE TABLE IF NOT EXISTS records (
    seq            INTEGER PRIMARY KEY,
    tenant         TEXT NOT NULL,
    id             TEXT NOT NULL,
    ts             INTEGER NOT NULL,
    category       TEXT NOT NULL,
    action         TEXT NOT NULL,
    user_id        TEXT,
    username       TEXT,
    employee_id    TEXT,
    result         TEXT,
    session_id     TEXT,
    correlation_id TEXT,
    body           TEXT NOT NULL,
    UNIQUE (tenant, id)
);
CREATE INDEX IF NOT EXISTS rec_time        ON records(tenant, ts, id);
CREATE INDEX IF NOT EXISTS rec_action      ON records(tenant, action, ts, id);
CREATE INDEX IF NOT EXISTS rec_category    ON records(tenant, category, ts, id);
-- A user id identifies only records without a username (see `EventFilter`), so its index holds
-- those rows alone: most records name both, and each entry of an index keyed by user dirties its
-- own page at every append (2,000 users, 1,000 records: ~800 pages per index per commit). The
-- index of every row (`rec_user_id`, before 2026-12-04) is dropped on open.
DROP INDEX IF EXISTS rec_user_id;
CREATE INDEX IF NOT EXISTS rec_user_id_bare ON records(tenant, user_id, ts, id) WHERE username IS NULL AND user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS rec_username    ON records(tenant, username, ts, id) WHERE username IS NOT NULL;
-- `employee_id` is filled for sign-ins only (`Record::is_sign_in`; rows written before 2026-12-04
-- have it for every record, which a sign-ins-only filter never reaches), like DynamoDB's `g8`.
CREATE INDEX IF NOT EXISTS rec_employee    ON records(tenant, employee_id, ts, id) WHERE employee_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS rec_result      ON records(tenant, result, ts, id) WHERE result IS NOT NULL;
CREATE INDEX IF NOT EXISTS rec_session     ON records(tenant, session_id, ts, id) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS rec_correlation ON records(tenant, correlation_id, ts, id) WHERE correlation_id IS NOT NULL;

-- Free text (`q`): a trigram index of each record's folded description (the text the `q` filter
-- tests: a JSON description in its serialised form). Contentless (the text is only in `body`) and
-- without positions (`detail=none`): it names candidate rows, the folded substring test decides.
-- The store keeps it in step with `records` in the same transaction as every erasure and purge,
-- and indexes appended rows in batches (one statement per batch: FTS5 flushes its pending terms at
-- every statement, so row by row costs 5x more; see `text_upto` below) (`records.rs`; not by triggers, which would need the folding function in
-- every connection that ever edits the file). The 'delete' command must be given exactly the text
-- indexed, so it is derived from the stored body before the row changes or goes; `secure-delete`
-- then removes the row's entries from the index itself (not a delete marker beside them), so an
-- erased text is gone from its pages too, which `secure_delete` overwrites. A row's id in the
-- index is its day (UTC, since 1970) shifted left 40 bits, OR its `seq`: a search names only the
-- candidates of its window's days (an FTS5 row-id range), not of the whole store. Rows go in in
-- row-id order (FTS5 flushes its pending terms whenever a row id is not above the previous one).
CREATE VIRTUAL TABLE IF NOT EXISTS records_text USING fts5(
    text, content = '', detail = none, tokenize = 'trigram case_sensitive 1'
);
INSERT INTO records_text(records_text, rank) VALUES ('secure-delete', 1);
-- The text of rows up to `seq` is indexed; later rows (the tail) are indexed in batches off the
-- append (`text::index_tail`: when the tail reaches `TEXT_BATCH` rows, and by `serve`'s indexer
-- a second after appends), and a search reads the tail's rows directly. Appends give new rows
-- a `seq` above it. A store from before it had every row indexed at its append: the mark starts
-- at the last row.
CREATE TABLE IF NOT EXISTS text_upto (one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL);
INSERT OR IGNORE INTO text_upto (one, seq) SELECT 1, coalesce(max(seq), 0) FROM records;

-- The last frame of the serving process's inbox (`inbox.rs`) whose records are in `records`,
-- moved in the transaction that inserts them: at the next open, the frames after it are indexed.
CREATE TABLE IF NOT EXISTS inbox_upto (one INTEGER PRIMARY KEY CHECK (one = 1), frame INTEGER NOT NULL);
INSERT OR IGNORE INTO inbox_upto (one, frame) VALUES (1, 0);

-- Asynchronous actions paired at write time: one row per correlation id.
CREATE TABLE IF NOT EXISTS requests (
    tenant         TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    action         TEXT NOT NULL,
    start_id       TEXT,
    end_id         TEXT,
    start_ts       INTEGER,
    end_ts         INTEGER,
    delay_ms       INTEGER,
    result         TEXT,
    PRIMARY KEY (tenant, correlation_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS req_delay ON requests(tenant, delay_ms, correlation_id) WHERE delay_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS req_open  ON requests(tenant, start_ts, correlation_id) WHERE end_id IS NULL;

CREATE TABLE IF NOT EXISTS settings (
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenants (tenant TEXT PRIMARY KEY) WITHOUT ROWID;

-- DPO subject index (dpo::subject keys); phone keys hold the digits reversed, so "the last N
-- digits" is a key-range lookup.
CREATE TABLE IF NOT EXISTS subjects (
    tenant    TEXT NOT NULL,
    key       TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (tenant, key, record_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subject_record ON subjects(tenant, record_id);

CREATE TABLE IF NOT EXISTS tasks (
    tenant  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    status  TEXT NOT NULL,
    version INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (tenant, kind, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_active ON tasks(kind, id) WHERE status IN ('QUEUED', 'RUNNING');

-- Tamper evidence (`integrity`): the journal, one row per append batch in commit order (the
-- sealer's reading order), and each tenant's seals.
CREATE TABLE IF NOT EXISTS journal (
    pos    INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    batch  TEXT NOT NULL,
    ids    TEXT NOT NULL,
    purges TEXT
);
CREATE INDEX IF NOT EXISTS journal_tenant ON journal(tenant, pos);
CREATE INDEX IF NOT EXISTS journal_batch  ON journal(tenant, batch);
CREATE TABLE IF NOT EXISTS seals (
    tenant TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    to_pos TEXT NOT NULL,
    body   TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seal_pos ON seals(tenant, to_pos);

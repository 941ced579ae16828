-- The web console (`directd web`): its users, which Direct accounts each may see, its sessions
-- and its login attempts. Passwords are argon2id PHC strings; a session row is keyed by the
-- SHA-256 of its cookie, so a copy of the store holds no cookie that would log anyone in.
CREATE TABLE web_users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('viewer', 'sender', 'admin')),
    password_hash  TEXT NOT NULL,
    -- The TOTP secret once enrolled; NULL until the first login confirms one.
    totp_secret    BLOB,
    -- The last TOTP time step accepted, so one code cannot be used twice.
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL
);
CREATE TABLE web_user_accounts (
    user_id  INTEGER NOT NULL REFERENCES web_users(id),
    account  TEXT NOT NULL,
    PRIMARY KEY (user_id, account)
);
-- stage: 'password' (the password was right, the second factor is due), 'enrol' (the same, for
-- a user without a TOTP secret yet; pending_secret is the one shown), 'full' (logged in).
CREATE TABLE web_sessions (
    token_hash      TEXT PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES web_users(id),
    csrf            TEXT NOT NULL,
    stage           TEXT NOT NULL CHECK (stage IN ('password', 'enrol', 'full')),
    pending_secret  BLOB,
    created_ms      INTEGER NOT NULL,
    last_seen_ms    INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
-- Every password or code tried, right or wrong, by the name typed (which may not exist): the
-- back-off counts the failures since the name's last success.
CREATE TABLE web_login_attempts (
    id      INTEGER PRIMARY KEY,
    at_ms   INTEGER NOT NULL,
    name    TEXT NOT NULL,
    ok      INTEGER NOT NULL
);
CREATE INDEX web_login_attempts_name ON web_login_attempts(name, id);
-- The inbox's unread-first order and the message pages look up audit rows by message.
CREATE INDEX audit_log_message_ref ON audit_log(message_ref, action);
CREATE INDEX incoming_account ON incoming(account, id);
CREATE INDEX outgoing_account ON outgoing(account, id);

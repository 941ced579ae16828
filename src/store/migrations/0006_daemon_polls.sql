-- Schema version 6: the daemon's record of its polling passes, so that `directd poll` can ask a
-- running daemon to poll now and learn when (and how) a pass that began after its request ended.
-- Times are kept twice: unix milliseconds to order a pass against a request made within the
-- same second, and RFC 3339 text for people.
CREATE TABLE daemon_polls (
    id               INTEGER PRIMARY KEY,
    started_ms       INTEGER NOT NULL,
    finished_ms      INTEGER NOT NULL,
    finished_at      TEXT NOT NULL,
    accounts_polled  INTEGER NOT NULL,
    received         INTEGER NOT NULL,
    sent             INTEGER NOT NULL,
    statuses         INTEGER NOT NULL,
    quarantined      INTEGER NOT NULL,
    errors           INTEGER NOT NULL
);

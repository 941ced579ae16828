-- Retention: audit records may be deleted by a purge once they are six years old (HIPAA's
-- floor), never sooner; the trigger keeps that rule whatever a configuration says.
DROP TRIGGER audit_log_append_only_d;
CREATE TRIGGER audit_log_append_only_d BEFORE DELETE ON audit_log
WHEN old.at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-2190 days')
BEGIN SELECT RAISE(ABORT, 'audit_log keeps records for six years'); END;

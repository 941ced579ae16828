//! Log lines for systemd's journal.
//!
//! Under systemd, stderr is a stream into journald, named by `JOURNAL_STREAM`. Lines there get
//! the sd-daemon(3) priority prefix (`<3>` error … `<7>` debug), so `journalctl -p warning`
//! filters them and errors show highlighted; journald adds its own timestamp, so none is written.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether stderr is the stream systemd connected to the journal (`JOURNAL_STREAM` names its
/// device and inode; a child that inherited the variable but not the stream must not match).
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// The ordinary text format without time or colour, behind the priority prefix.
pub struct JournalPrefix {
    inner: Format<format::Full, ()>,
}

impl Default for JournalPrefix {
    fn default() -> Self {
        JournalPrefix {
            inner: format().without_time().with_ansi(false),
        }
    }
}

fn format() -> Format<format::Full, tracing_subscriber::fmt::time::SystemTime> {
    tracing_subscriber::fmt::format()
}

fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<S, N> FormatEvent<S, N> for JournalPrefix
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.inner.format_event(ctx, writer, event)
    }
}

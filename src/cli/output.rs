//! Plain-text tables and JSON for the listing commands.

use std::io::Write;

use serde::Serialize;

/// Writes command output to stdout. Text that came from outside (a sender's Subject, a filename,
/// a document's title) could carry terminal escape sequences that recolour the screen, retitle
/// the window or hide lines, so every control character except newline and tab is shown escaped
/// (`\u{1b}`), as are the Unicode controls that reorder text.
///
/// A closed pipe (`directd messages | head`) ends the process with status 0 and no message, as
/// ripgrep does: SIGPIPE is ignored so that network peers cannot kill the process, and the write
/// error is the signal that nobody is reading.
pub fn write_out(text: &str) {
    let clean = escape_controls(text);
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(clean.as_bytes()).and_then(|()| out.flush()) {
        // A long-running command (the sandbox, the daemon) is not ended by whoever reads its
        // banner going away; it just has nobody to tell.
        if !OUTPUT_ENDS_COMMAND.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("directd: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// Whether a failed write to stdout ends the command (listings: yes; long-running: no).
static OUTPUT_ENDS_COMMAND: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);

/// For commands that run until stopped: output that cannot be written is dropped.
pub fn keep_running_without_stdout() {
    OUTPUT_ENDS_COMMAND.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Control characters (other than newline and tab) and bidirectional overrides, escaped; a CR
/// before a newline is dropped, since it only ends a line the CRLF way.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(bad) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            continue;
        }
        if bad(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Prints rows as left-aligned columns under a header. Cells are single-lined so a hostile value
/// cannot forge extra rows.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    // A row longer than the header prints cells under the wrong headings (`ccda list` once
    // showed the source under TYPE): a programming error worth failing every test over.
    debug_assert!(
        rows.iter().all(|r| r.len() == header.len()),
        "table: {} headings for rows of {:?} cells",
        header.len(),
        rows.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        outln!("{}", out.trim_end());
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}

pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), super::CliError> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(escape_controls("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            escape_controls("\u{1b}[31mred\u{1b}]0;title\u{7}"),
            "\\u{1b}[31mred\\u{1b}]0;title\\u{7}"
        );
        assert_eq!(escape_controls("a\r\nb\rc"), "a\nb\\u{d}c");
        assert_eq!(escape_controls("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape_controls("\u{9b}2J"), "\\u{9b}2J");
    }
}

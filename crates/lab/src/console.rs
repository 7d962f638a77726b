//! The lab's one terminal: every child's output lines, each behind a coloured name prefix,
//! and the lab's own messages, written whole so lines of different processes never mix.
//! Each process's lines also go to its log file and to a short tail kept for error reports.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{IsTerminal as _, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};

/// How many of a process's last lines an error report shows.
pub const TAIL_LINES: usize = 20;

/// Prefix colours, in start order; red is left for errors.
const PALETTE: &[&str] = &["36", "33", "35", "32", "34", "96", "93", "95", "92", "94"];
const LAB_NAME: &str = "lab";

/// Cheap to clone; all clones write to the same output.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    out: Mutex<Box<dyn Write + Send>>,
    colour: bool,
    /// Prefixes are padded to this width so the output lines up in columns.
    width: usize,
}

/// Where a line comes from, as it is shown before the line.
#[derive(Debug, Clone)]
pub struct Prefix {
    text: String,
}

impl Console {
    /// The terminal: colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn stdout(names: &[&str]) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let colour = std::io::stdout().is_terminal() && !no_color;
        Self::new(Box::new(std::io::stdout()), colour, names)
    }

    /// Writes to `out`; `names` are the processes whose prefixes must line up.
    pub fn new(out: Box<dyn Write + Send>, colour: bool, names: &[&str]) -> Self {
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .chain([LAB_NAME.len()])
            .max()
            .unwrap_or(0);
        Self {
            inner: Arc::new(Inner {
                out: Mutex::new(out),
                colour,
                width,
            }),
        }
    }

    pub fn colour(&self) -> bool {
        self.inner.colour
    }

    /// The prefix of the `index`-th process (its colour follows the start order).
    pub fn prefix(&self, name: &str, index: usize) -> Prefix {
        self.make_prefix(name, PALETTE[index % PALETTE.len()])
    }

    fn make_prefix(&self, name: &str, colour: &str) -> Prefix {
        let padded = format!("{name:>width$} │", width = self.inner.width);
        let text = if self.inner.colour {
            format!("\x1b[{colour}m{padded}\x1b[0m ")
        } else {
            format!("{padded} ")
        };
        Prefix { text }
    }

    /// One line of a process's output.
    pub fn line(&self, prefix: &Prefix, line: &str) {
        self.write(&format!("{}{line}\n", prefix.text));
    }

    /// A message of the lab itself.
    pub fn say(&self, message: &str) {
        let prefix = self.make_prefix(LAB_NAME, "1");
        for line in message.lines() {
            self.line(&prefix, line);
        }
    }

    /// An error of the lab itself, in red on a terminal.
    pub fn shout(&self, message: &str) {
        let prefix = self.make_prefix(LAB_NAME, "1;31");
        for line in message.lines() {
            if self.inner.colour {
                self.line(&prefix, &format!("\x1b[1;31m{line}\x1b[0m"));
            } else {
                self.line(&prefix, line);
            }
        }
    }

    /// Text without a prefix (the summary table), written as one block.
    pub fn plain(&self, text: &str) {
        self.write(text);
    }

    fn write(&self, text: &str) {
        let mut out = self
            .inner
            .out
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A closed terminal is no reason to stop the lab: its log files still get everything.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// What a process has written: the last [`TAIL_LINES`] lines, and its log file.
pub struct ProcessLog {
    tail: Mutex<VecDeque<String>>,
    file: Mutex<Option<File>>,
}

impl ProcessLog {
    /// Truncates `log_file` (one run per file) when given; without one, only the tail is kept.
    pub fn create(log_file: Option<&Path>) -> std::io::Result<Self> {
        let file = log_file.map(File::create).transpose()?;
        Ok(Self {
            tail: Mutex::new(VecDeque::with_capacity(TAIL_LINES)),
            file: Mutex::new(file),
        })
    }

    /// A note of the lab's in the log file only (each line marked `# lab: `), such as the
    /// header saying how the process was started.
    pub fn annotate(&self, note: &str) {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = file.as_mut() {
            for line in note.lines() {
                let _ = writeln!(f, "# lab: {line}");
            }
        }
    }

    fn record(&self, line: &str) {
        let plain = strip_ansi(line);
        {
            let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(plain.clone());
        }
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = file.as_mut()
            && writeln!(f, "{plain}").is_err()
        {
            // A full disk should not take the lab down; the terminal still shows the lines.
            *file = None;
        }
    }

    pub fn last_lines(&self) -> Vec<String> {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.iter().cloned().collect()
    }
}

/// Copies `stream` line by line to the console and the process's log, until end of file.
/// Bytes that are not UTF-8 are shown replaced rather than dropping the line.
pub async fn forward_lines(
    stream: impl AsyncRead + Unpin,
    console: Console,
    prefix: Prefix,
    log: Arc<ProcessLog>,
) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\n', '\r']);
                console.line(&prefix, line);
                log.record(line);
            }
        }
    }
}

/// `line` without ANSI escape sequences (CSI `ESC [ … final` and two-byte `ESC x`), for
/// log files and error reports.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        // A two-byte escape loses its second byte; a CSI sequence runs to its final byte.
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colour_codes_from_log_lines() {
        assert_eq!(
            strip_ansi("\x1b[2m2026-01-01\x1b[0m \x1b[32m INFO\x1b[0m listening"),
            "2026-01-01  INFO listening"
        );
        assert_eq!(strip_ansi("plain ☕ text"), "plain ☕ text");
    }

    #[test]
    fn tail_keeps_only_the_last_lines() {
        let log = ProcessLog::create(None).unwrap();
        for i in 0..(TAIL_LINES + 5) {
            log.record(&format!("line {i}"));
        }
        let lines = log.last_lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 5");
        assert_eq!(lines[TAIL_LINES - 1], format!("line {}", TAIL_LINES + 4));
    }
}

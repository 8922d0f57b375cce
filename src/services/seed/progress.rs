//! The progress bar on stderr: redrawn in place on a terminal, a line per tenth of the work
//! otherwise, so a long seed shows it is moving without flooding a log.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use super::run::{thousands, Options, Progress};

/// Progress on stderr: a bar redrawn in place at most ten times a second on a terminal,
/// otherwise one line per tenth of the work.
pub struct ProgressBar {
    orgs: usize,
    cycles: usize,
    terminal: bool,
    last_draw: Option<Instant>,
    tenths_printed: usize,
    drawn: bool,
    width: usize,
}

const BAR_WIDTH: usize = 30;

impl ProgressBar {
    pub fn new(options: Options) -> Self {
        ProgressBar {
            orgs: options.orgs.max(1),
            cycles: options.cycles,
            terminal: std::io::stderr().is_terminal(),
            last_draw: None,
            tenths_printed: 0,
            drawn: false,
            width: 0,
        }
    }

    fn line(&self, phase: usize, done: usize, overall: f64) -> String {
        let filled = ((overall * BAR_WIDTH as f64).round() as usize).min(BAR_WIDTH);
        let stage = if phase == 0 {
            "registry and accounts".to_string()
        } else {
            format!("cycle {phase}/{}", self.cycles)
        };
        format!(
            "[{}{}] {}/{} organisations, {stage}",
            "#".repeat(filled),
            ".".repeat(BAR_WIDTH - filled),
            thousands(done),
            thousands(self.orgs)
        )
    }

    /// End the bar's line.
    pub fn finish(&mut self) {
        if self.terminal && self.drawn {
            eprintln!();
        }
    }
}

impl Progress for ProgressBar {
    fn update(&mut self, phase: usize, done: usize) {
        let total = self.orgs * (self.cycles + 1);
        let finished = (phase * self.orgs + done).min(total);
        let overall = finished as f64 / total as f64;
        if self.terminal {
            let due = self
                .last_draw
                .is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(100));
            if due || finished == total {
                // Padded to the longest line so far, so a shorter line leaves no tail behind.
                let line = self.line(phase, done, overall);
                self.width = self.width.max(line.chars().count());
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{line:<width$}", width = self.width);
                let _ = err.flush();
                self.last_draw = Some(Instant::now());
                self.drawn = true;
            }
        } else {
            let tenths = finished * 10 / total;
            if tenths > self.tenths_printed {
                self.tenths_printed = tenths;
                eprintln!("{} ({}%)", self.line(phase, done, overall), tenths * 10);
            }
        }
    }
}

//! The retry ladder as data: the delays a message waits after a transient
//! failure, step by step (each step is a delay queue named by its label),
//! before it is tried again; past the last step it is dead-lettered.

use std::time::Duration;

/// The delays of the ladder, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryLadder(Vec<Duration>);

impl RetryLadder {
    /// Parses `10s,1m,10m`: at least one delay, each at least one second.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let d = humantime::parse_duration(part).map_err(|e| format!("{part:?}: {e}"))?;
            if d < Duration::from_secs(1) {
                return Err(format!("{part:?}: each delay must be at least 1s"));
            }
            out.push(d);
        }
        if out.is_empty() {
            return Err("at least one delay is needed, e.g. 10s,1m,10m".into());
        }
        Ok(Self(out))
    }

    /// The delays, in order.
    pub fn steps(&self) -> &[Duration] {
        &self.0
    }

    /// The delays, owned.
    pub fn into_steps(self) -> Vec<Duration> {
        self.0
    }
}

/// A short, stable label for a delay: `10s`, `1m`, `6h`, `1d`, `90s`.
pub fn delay_label(d: Duration) -> String {
    // Sub-second delays (tests) keep their milliseconds, so two short
    // steps never share a queue with different TTLs.
    if d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(delay_label(Duration::from_secs(90)), "90s");
        assert_eq!(delay_label(Duration::from_secs(600)), "10m");
        assert_eq!(delay_label(Duration::from_secs(86_400)), "1d");
        assert_eq!(delay_label(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn ladders_parse_and_refuse_nonsense() {
        let ladder = RetryLadder::parse("10s, 1m,1h").expect("valid");
        assert_eq!(
            ladder.steps(),
            [
                Duration::from_secs(10),
                Duration::from_secs(60),
                Duration::from_secs(3600)
            ]
        );
        for bad in ["", "soon", "10ms", " , "] {
            assert!(RetryLadder::parse(bad).is_err(), "{bad:?}");
        }
    }
}

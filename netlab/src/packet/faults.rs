//! What the `packet` nemesis can do to the packets of a link, with the
//! defaults of Jepsen's packet package (`jepsen.net/all-packet-behaviors`,
//! after `tc-netem(8)`), and how a list of names chooses some.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::NetlabError;

/// One kind of packet fault, as named on a command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Behavior {
    Delay,
    Loss,
    Duplicate,
    Reorder,
    Corrupt,
    Rate,
}

impl Behavior {
    pub const ALL: [Behavior; 6] = [
        Behavior::Delay,
        Behavior::Loss,
        Behavior::Duplicate,
        Behavior::Reorder,
        Behavior::Corrupt,
        Behavior::Rate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Behavior::Delay => "delay",
            Behavior::Loss => "loss",
            Behavior::Duplicate => "duplicate",
            Behavior::Reorder => "reorder",
            Behavior::Corrupt => "corrupt",
            Behavior::Rate => "rate",
        }
    }
}

impl fmt::Display for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Behavior {
    type Err = NetlabError;

    fn from_str(s: &str) -> Result<Behavior, NetlabError> {
        Behavior::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                NetlabError::InvalidFaults(format!(
                    "unknown packet behavior {s:?} (expected delay, loss, duplicate, \
                     reorder, corrupt, rate or all)"
                ))
            })
    }
}

/// A delay: `time` plus normally distributed jitter of standard deviation
/// `jitter`, each sample correlated with the previous one (see
/// [`crate::packet`] for what correlation means here).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Delay {
    pub time: Duration,
    pub jitter: Duration,
    pub correlation: f64,
}

/// Something that happens to a packet with a long-run `probability`, each
/// decision correlated with the previous one by `correlation` (both in
/// `0.0..=1.0`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Chance {
    pub probability: f64,
    pub correlation: f64,
}

/// A bandwidth, in bits per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub bits_per_second: u64,
}

/// The faults of one link; `None` leaves that aspect alone.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PacketFaults {
    pub delay: Option<Delay>,
    pub loss: Option<Chance>,
    pub duplicate: Option<Chance>,
    /// Packets picked for reordering skip the delay, so they overtake
    /// those held back; needs a delay (as with netem).
    pub reorder: Option<Chance>,
    /// Flips one random bit of the packet past its IP header (the
    /// transport header or payload), so the receiver's checksum rejects it.
    pub corrupt: Option<Chance>,
    pub rate: Option<Rate>,
}

/// Jepsen's defaults.
pub const DEFAULT_DELAY: Delay = Delay {
    time: Duration::from_millis(50),
    jitter: Duration::from_millis(10),
    correlation: 0.25,
};
pub const DEFAULT_CHANCE: Chance = Chance {
    probability: 0.20,
    correlation: 0.75,
};
pub const DEFAULT_RATE: Rate = Rate {
    bits_per_second: 1_000_000,
};

impl PacketFaults {
    /// The given behaviors at their defaults. As in Jepsen, `reorder`
    /// brings the default delay along when `delay` is not chosen (without
    /// a delay there is nothing to overtake).
    pub fn of(behaviors: &[Behavior]) -> PacketFaults {
        let mut faults = PacketFaults::default();
        for b in behaviors {
            match b {
                Behavior::Delay => faults.delay = Some(DEFAULT_DELAY),
                Behavior::Loss => faults.loss = Some(DEFAULT_CHANCE),
                Behavior::Duplicate => faults.duplicate = Some(DEFAULT_CHANCE),
                Behavior::Reorder => faults.reorder = Some(DEFAULT_CHANCE),
                Behavior::Corrupt => faults.corrupt = Some(DEFAULT_CHANCE),
                Behavior::Rate => faults.rate = Some(DEFAULT_RATE),
            }
        }
        if faults.reorder.is_some() && faults.delay.is_none() {
            faults.delay = Some(DEFAULT_DELAY);
        }
        faults
    }

    /// Parses a comma list of behavior names (`delay,loss`), or `all`.
    pub fn parse_list(s: &str) -> Result<PacketFaults, NetlabError> {
        let s = s.trim();
        if s == "all" {
            return Ok(PacketFaults::of(&Behavior::ALL));
        }
        let behaviors = s
            .split(',')
            .map(|b| b.trim().parse())
            .collect::<Result<Vec<Behavior>, _>>()?;
        Ok(PacketFaults::of(&behaviors))
    }

    /// A fixed delay and nothing else (figure 8's slow links).
    pub fn delay(time: Duration) -> PacketFaults {
        PacketFaults {
            delay: Some(Delay {
                time,
                jitter: Duration::ZERO,
                correlation: 0.0,
            }),
            ..PacketFaults::default()
        }
    }

    /// Whether nothing is asked for.
    pub fn is_empty(&self) -> bool {
        *self == PacketFaults::default()
    }

    /// Whether packets must pass through the emulator (everything but rate).
    pub(crate) fn needs_emulator(&self) -> bool {
        PacketFaults {
            rate: None,
            ..*self
        } != PacketFaults::default()
    }

    /// The four chance-driven behaviors, by name.
    fn chances(&self) -> [(&'static str, Option<Chance>); 4] {
        [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ]
    }

    /// Rejects probabilities and correlations outside `0..=1`, a zero
    /// rate, and reordering without a delay.
    pub fn validate(&self) -> Result<(), NetlabError> {
        let bad = |what: String| Err(NetlabError::InvalidFaults(what));
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        for (name, chance) in self.chances() {
            if let Some(c) = chance
                && !(unit(c.probability) && unit(c.correlation))
            {
                return bad(format!(
                    "{name}: probability and correlation must be in 0..=1"
                ));
            }
        }
        if let Some(d) = self.delay
            && !unit(d.correlation)
        {
            return bad("delay: correlation must be in 0..=1".into());
        }
        if self.rate.is_some_and(|r| r.bits_per_second == 0) {
            return bad("rate: must be above 0 bit/s".into());
        }
        if self.reorder.is_some() && self.delay.is_none_or(|d| d.time.is_zero()) {
            return bad("reorder needs a delay".into());
        }
        Ok(())
    }

    /// For the history: `{"delay":{"time_ms":50,"jitter_ms":10,"correlation":0.25},"loss":{...}}`.
    pub fn to_value(&self) -> Value {
        let chance =
            |c: Chance| json!({"probability": c.probability, "correlation": c.correlation});
        let mut v = serde_json::Map::new();
        if let Some(d) = self.delay {
            v.insert(
                "delay".into(),
                json!({"time_ms": d.time.as_secs_f64() * 1e3,
                       "jitter_ms": d.jitter.as_secs_f64() * 1e3,
                       "correlation": d.correlation}),
            );
        }
        for (name, c) in self.chances() {
            if let Some(c) = c {
                v.insert(name.into(), chance(c));
            }
        }
        if let Some(r) = self.rate {
            v.insert("rate".into(), json!({"bits_per_second": r.bits_per_second}));
        }
        Value::Object(v)
    }
}

/// In netem's words: `delay 50ms 10ms 25% loss 20% 75% rate 1000kbit`.
impl fmt::Display for PacketFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| format!("{}%", (x * 1000.0).round() / 10.0);
        let mut parts = Vec::new();
        if let Some(d) = self.delay {
            parts.push(format!(
                "delay {}ms {}ms {}",
                d.time.as_millis(),
                d.jitter.as_millis(),
                pct(d.correlation)
            ));
        }
        for (name, c) in self.chances() {
            if let Some(c) = c {
                parts.push(format!(
                    "{name} {} {}",
                    pct(c.probability),
                    pct(c.correlation)
                ));
            }
        }
        if let Some(r) = self.rate {
            parts.push(format!("rate {}kbit", r.bits_per_second / 1000));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_chooses_behaviors_at_jepsens_defaults() {
        let f = PacketFaults::parse_list("loss, rate").unwrap();
        assert_eq!(f.loss, Some(DEFAULT_CHANCE));
        assert_eq!(f.rate, Some(DEFAULT_RATE));
        assert!(f.delay.is_none() && f.corrupt.is_none());
        assert_eq!(f.to_string(), "loss 20% 75% rate 1000kbit");
        let all = PacketFaults::parse_list("all").unwrap();
        assert_eq!(
            all.to_string(),
            "delay 50ms 10ms 25% loss 20% 75% duplicate 20% 75% reorder 20% 75% \
             corrupt 20% 75% rate 1000kbit"
        );
        all.validate().unwrap();
    }

    #[test]
    fn reorder_brings_the_default_delay() {
        let f = PacketFaults::parse_list("reorder").unwrap();
        assert_eq!(f.delay, Some(DEFAULT_DELAY));
        f.validate().unwrap();
    }

    #[test]
    fn nonsense_is_refused_with_its_name() {
        let e = PacketFaults::parse_list("delay,jitter")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"jitter\""), "{e}");
        let mut f = PacketFaults::of(&[Behavior::Loss]);
        f.loss = Some(Chance {
            probability: 1.5,
            correlation: 0.0,
        });
        assert!(f.validate().unwrap_err().to_string().contains("loss"));
        let reorder_alone = PacketFaults {
            reorder: Some(DEFAULT_CHANCE),
            ..PacketFaults::default()
        };
        assert!(reorder_alone.validate().is_err());
        let no_rate = PacketFaults {
            rate: Some(Rate { bits_per_second: 0 }),
            ..PacketFaults::default()
        };
        assert!(no_rate.validate().is_err());
    }

    #[test]
    fn only_rate_does_without_the_emulator() {
        assert!(!PacketFaults::of(&[Behavior::Rate]).needs_emulator());
        assert!(PacketFaults::of(&[Behavior::Corrupt]).needs_emulator());
        assert!(PacketFaults::delay(Duration::from_millis(100)).needs_emulator());
        assert!(PacketFaults::default().is_empty());
    }
}

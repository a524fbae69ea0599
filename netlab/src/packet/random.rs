//! The emulator's randomness: a small seeded generator, correlated yes/no
//! decisions, and correlated normal jitter.
//!
//! ## Correlation
//!
//! netem's correlation mixes each new uniform sample with the previous
//! one, which is known to shift the long-run rate away from the one asked
//! for. Ours keeps the rate exact and gives "correlation" a textbook
//! meaning:
//!
//! - A [`Chance`] of probability `p` and correlation `c` is a two-state
//!   Markov chain: after a hit the next packet is hit with probability
//!   `p + c(1 - p)`, after a miss with `p(1 - c)`. Its stationary hit rate
//!   is exactly `p`, and the correlation between successive decisions is
//!   exactly `c`; hits come in bursts of mean length `1 / ((1 - c)(1 - p))`
//!   (Jepsen's 20% / 75%: bursts of 5 packets, then on average 20 clean).
//! - Jitter of standard deviation `σ` and correlation `c` is an AR(1)
//!   series `j' = c·j + √(1 - c²)·z` of standard normals `z`, scaled by
//!   `σ`: every sample is normal with deviation `σ`, and successive
//!   samples have correlation `c`.

use crate::packet::faults::Chance;

pub(crate) use splitmix::Rng;

/// A standard normal sample (Box–Muller).
pub(crate) fn normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.unit(); // (0, 1]: ln is finite
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Correlated yes/no decisions (module docs).
#[derive(Clone, Debug)]
pub(crate) struct Decisions {
    chance: Chance,
    last: bool,
}

impl Decisions {
    pub fn new(chance: Chance, rng: &mut Rng) -> Decisions {
        // Start in the stationary distribution, so the first packets are
        // not special.
        let last = rng.unit() < chance.probability;
        Decisions { chance, last }
    }

    pub fn next(&mut self, rng: &mut Rng) -> bool {
        let Chance {
            probability: p,
            correlation: c,
        } = self.chance;
        let q = if self.last {
            p + c * (1.0 - p)
        } else {
            p * (1.0 - c)
        };
        self.last = rng.unit() < q;
        self.last
    }
}

/// Correlated standard normal samples (module docs).
#[derive(Clone, Debug)]
pub(crate) struct Jitter {
    correlation: f64,
    last: f64,
}

impl Jitter {
    pub fn new(correlation: f64, rng: &mut Rng) -> Jitter {
        Jitter {
            correlation,
            last: normal(rng),
        }
    }

    pub fn next(&mut self, rng: &mut Rng) -> f64 {
        let c = self.correlation;
        self.last = c * self.last + (1.0 - c * c).sqrt() * normal(rng);
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chance(probability: f64, correlation: f64) -> Chance {
        Chance {
            probability,
            correlation,
        }
    }

    /// Rate, lag-1 correlation and mean burst length of `n` decisions.
    fn measure(c: Chance, n: usize, seed: u64) -> (f64, f64, f64) {
        let mut rng = Rng::new(seed);
        let mut d = Decisions::new(c, &mut rng);
        let xs: Vec<f64> = (0..n).map(|_| d.next(&mut rng) as u8 as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let cov = xs
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum::<f64>()
            / (n - 1) as f64;
        let bursts = xs.windows(2).filter(|w| w[0] == 0.0 && w[1] == 1.0).count();
        let hits = xs.iter().filter(|x| **x == 1.0).count();
        (mean, cov / var, hits as f64 / bursts.max(1) as f64)
    }

    #[test]
    fn decisions_keep_the_rate_and_have_the_asked_correlation() {
        for (p, c) in [(0.2, 0.75), (0.2, 0.0), (0.5, 0.5), (0.05, 0.9)] {
            let (rate, corr, burst) = measure(chance(p, c), 400_000, 7);
            assert!((rate - p).abs() < 0.01, "p={p} c={c}: rate {rate}");
            assert!((corr - c).abs() < 0.02, "p={p} c={c}: correlation {corr}");
            let expected = 1.0 / ((1.0 - c) * (1.0 - p));
            assert!(
                (burst - expected).abs() / expected < 0.05,
                "burst {burst} vs {expected}"
            );
        }
    }

    #[test]
    fn certain_and_impossible_chances_are_exact() {
        assert_eq!(measure(chance(1.0, 0.75), 1000, 1).0, 1.0);
        assert_eq!(measure(chance(0.0, 0.75), 1000, 1).0, 0.0);
    }

    #[test]
    fn jitter_is_standard_normal_with_the_asked_correlation() {
        let mut rng = Rng::new(3);
        let mut j = Jitter::new(0.25, &mut rng);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| j.next(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let corr = xs.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / (n - 1) as f64 / var;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        assert!((corr - 0.25).abs() < 0.02, "correlation {corr}");
    }
}

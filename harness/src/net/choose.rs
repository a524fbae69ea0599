//! Which network a run gets: `--network netns|proxy`, or by default
//! namespaces where they can run and proxies otherwise. Asked for where
//! they cannot run, namespaces are an error of one line naming the missing
//! tool or privilege (the caller exits 254).

use super::NetworkKind;
use super::netns::in_private_namespace;

/// The network chosen, and why not namespaces when it fell back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// What the runs use.
    pub kind: NetworkKind,
    /// Why namespaces were not used, when they were not asked against.
    pub fallback: Option<String>,
}

impl Chosen {
    /// The line printed at start: `network: netns (...)`.
    pub fn line(&self) -> String {
        match (self.kind, &self.fallback) {
            (NetworkKind::Netns, _) => {
                "network: netns (a namespace per node, 198.18.0.0/15, faults in the packet filter)"
                    .into()
            }
            (NetworkKind::Proxy, Some(why)) => {
                format!("network: proxy (nodes on loopback ports; {why})")
            }
            (NetworkKind::Proxy, None) => "network: proxy (nodes on loopback ports)".into(),
        }
    }
}

/// Chooses the network for `asked` (`None`: the default). Call it after
/// [`crate::sandbox::enter`]: namespaces need the harness in a private
/// network namespace, and [`netlab::check`] starts threads.
pub fn choose(asked: Option<NetworkKind>) -> Result<Chosen, String> {
    if asked == Some(NetworkKind::Proxy) {
        return Ok(Chosen {
            kind: NetworkKind::Proxy,
            fallback: None,
        });
    }
    match netns_unavailable() {
        None => Ok(Chosen {
            kind: NetworkKind::Netns,
            fallback: None,
        }),
        Some(why) if asked.is_some() => Err(format!("--network netns: {why}")),
        Some(why) => Ok(Chosen {
            kind: NetworkKind::Proxy,
            fallback: Some(why),
        }),
    }
}

/// Why namespaces cannot run here, in one line; `None` if they can.
fn netns_unavailable() -> Option<String> {
    // The tools and privileges first: they name what to install or how to
    // run, where a refused unshare says only "not permitted".
    if let Err(e) = netlab::check() {
        return Some(e.to_string());
    }
    if !in_private_namespace() {
        return Some(match crate::sandbox::net_ns_error() {
            Some(e) => format!("network namespaces unavailable: {e}"),
            None => "network namespaces unavailable: the harness did not enter a private \
                     network namespace"
                .into(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_asked_for_are_chosen_without_probing_and_a_fallback_says_why() {
        let asked = choose(Some(NetworkKind::Proxy)).unwrap();
        assert_eq!(asked.kind, NetworkKind::Proxy);
        assert_eq!(asked.line(), "network: proxy (nodes on loopback ports)");
        let fell_back = Chosen {
            kind: NetworkKind::Proxy,
            fallback: Some("network namespaces unavailable: no CAP_NET_ADMIN (run as root)".into()),
        };
        assert_eq!(
            fell_back.line(),
            "network: proxy (nodes on loopback ports; network namespaces unavailable: no \
             CAP_NET_ADMIN (run as root))"
        );
    }

    #[test]
    fn namespaces_asked_for_outside_a_private_namespace_are_one_line() {
        // The test runner never entered a private namespace: whatever is
        // missing first, namespaces are refused, in one line, and the
        // default falls back.
        let e = choose(Some(NetworkKind::Netns)).unwrap_err();
        assert!(
            e.starts_with("--network netns: network namespaces unavailable: "),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        let default = choose(None).unwrap();
        assert_eq!(default.kind, NetworkKind::Proxy);
        assert!(default.fallback.is_some());
    }
}

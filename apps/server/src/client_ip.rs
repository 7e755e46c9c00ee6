//! The client's address behind trusted proxies.
//!
//! A request straight from a client is known by its TCP peer. When the peer is one of the
//! configured `trusted_proxies`, the client is the right-most address of `X-Forwarded-For`
//! that is not itself a trusted proxy: every hop to the right of it was added by
//! infrastructure we trust, everything to the left was written by the client and proves
//! nothing.

use std::net::IpAddr;

/// Addresses and networks (`10.0.0.0/8`, `::1`) whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.5`, `10.0.0.0/8` or `fd00::/8` entries; names the first bad one.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut nets = Vec::with_capacity(entries.len());
        for entry in entries {
            let (addr, bits) = match entry.trim().split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (entry.trim(), None),
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("trusted_proxies: {entry:?} is not an address"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("trusted_proxies: {entry:?} has a bad prefix"))?,
            };
            nets.push((addr, bits));
        }
        Ok(Self(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0
            .iter()
            .any(|(net, bits)| match (canonical(*net), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            })
    }

    /// The client's address: `peer`, or when `peer` is trusted, the right-most untrusted
    /// address of `forwarded_for`.
    #[must_use]
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_for.unwrap_or_default().rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        canonical(client)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_peer() {
        let proxies =
            TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "192.0.2.1".to_owned()]).unwrap();
        let xff = Some("198.51.100.9, 203.0.113.7, 10.1.2.3");
        // From a trusted proxy: the right-most untrusted hop; the client-written left part
        // is ignored.
        assert_eq!(proxies.client(ip("10.0.0.1"), xff), ip("203.0.113.7"));
        assert_eq!(proxies.client(ip("192.0.2.1"), xff), ip("203.0.113.7"));
        // From anyone else: the peer.
        assert_eq!(proxies.client(ip("192.0.2.2"), xff), ip("192.0.2.2"));
        // No header, or garbage in it: the last address known.
        assert_eq!(proxies.client(ip("10.0.0.1"), None), ip("10.0.0.1"));
        assert_eq!(
            proxies.client(ip("10.0.0.1"), Some("junk, 10.0.0.2")),
            ip("10.0.0.2")
        );
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), xff),
            ip("10.0.0.1")
        );
        // IPv4-mapped IPv6 peers match IPv4 networks.
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.1"), xff),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn bad_entries_are_named() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".to_owned()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".to_owned()]).is_err());
        assert!(TrustedProxies::parse(&["fd00::/8".to_owned(), "0.0.0.0/0".to_owned()]).is_ok());
    }
}

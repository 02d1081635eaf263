//! The cap on connections from one client address (nginx's `limit_conn`
//! keyed by address): one machine cannot take every connection the host
//! allows. An IPv6 client is counted by its /64, which one subscriber
//! usually holds whole; trusted proxies, which carry everyone's
//! connections, are not capped.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

/// Open connections per client.
pub(super) struct PerAddress {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in the count, given back when dropped.
pub(super) struct Counted {
    table: Arc<PerAddress>,
    client: IpAddr,
}

/// Whom connections from `address` are counted against.
fn client_of(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

impl PerAddress {
    /// At most `cap` connections per client.
    pub(super) fn new(cap: usize) -> Arc<PerAddress> {
        Arc::new(PerAddress {
            cap,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a connection from `address`, unless its client already has
    /// `cap` open.
    pub(super) fn admit(self: &Arc<Self>, address: IpAddr) -> Option<Counted> {
        let client = client_of(address);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(client).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Counted {
            table: Arc::clone(self),
            client,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_at_most_its_share_and_gets_it_back() {
        let table = PerAddress::new(2);
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let first = table.admit(ip("192.0.2.1")).unwrap();
        let _second = table.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert!(table.admit(ip("192.0.2.1")).is_none());
        assert!(table.admit(ip("192.0.2.2")).is_some());
        drop(first);
        assert!(table.admit(ip("192.0.2.1")).is_some());
        // one IPv6 subscriber's /64 is one client
        let _a = table.admit(ip("2001:db8:1:2::1")).unwrap();
        let _b = table.admit(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert!(table.admit(ip("2001:db8:1:2:abcd::1")).is_none());
        assert!(table.admit(ip("2001:db8:1:3::1")).is_some());
        drop((_a, _b));
        assert!(
            table
                .open
                .lock()
                .unwrap()
                .get(&ip("2001:db8:1:2::"))
                .is_none()
        );
    }
}

//! [`RenderCache`]: rendered text kept by the text it was made from, least
//! recently used dropped first, within a budget of bytes.

use std::{
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use hashlink::LruCache;

/// Rendered texts by key. The key must be everything the rendering depends
/// on (a post's markdown, an error page's status, root and message), so a
/// hit is never stale. Keys and texts count against the budget together.
pub struct RenderCache {
    entries: Mutex<Entries>,
    /// The most bytes of keys and texts kept.
    budget: usize,
}

struct Entries {
    by_key: LruCache<Arc<str>, Arc<str>>,
    /// Bytes of keys and texts held.
    bytes: usize,
}

impl RenderCache {
    /// A cache holding at most `budget` bytes of keys and texts; an entry
    /// larger than that on its own is never kept.
    pub fn new(budget: usize) -> RenderCache {
        RenderCache {
            entries: Mutex::new(Entries {
                by_key: LruCache::new_unbounded(),
                bytes: 0,
            }),
            budget,
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        // the entries and their byte count change together, in code that
        // cannot panic between the two
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The text kept for `key`, now the most recently used.
    pub fn get(&self, key: &str) -> Option<Arc<str>> {
        self.entries().by_key.get(key).cloned()
    }

    /// Keeps `text` for `key` (if it fits the budget at all), dropping the
    /// least recently used entries beyond the budget, and returns it.
    pub fn insert(&self, key: &str, text: String) -> Arc<str> {
        let text: Arc<str> = text.into();
        let size = key.len() + text.len();
        if size > self.budget {
            return text;
        }
        let mut entries = self.entries();
        if let Some(replaced) = entries.by_key.insert(Arc::from(key), Arc::clone(&text)) {
            // another thread rendered it meanwhile
            entries.bytes -= key.len() + replaced.len();
        }
        entries.bytes += size;
        while entries.bytes > self.budget {
            let Some((key, text)) = entries.by_key.remove_lru() else {
                break;
            };
            entries.bytes -= key.len() + text.len();
        }
        text
    }

    /// The text for `key`: the one kept, or `render`'s, then kept. Renders
    /// outside the lock, so other requests read the cache meanwhile; an
    /// error is returned and nothing kept.
    pub fn get_or_render<E>(
        &self,
        key: &str,
        render: impl FnOnce() -> Result<String, E>,
    ) -> Result<Arc<str>, E> {
        match self.get(key) {
            Some(text) => Ok(text),
            None => Ok(self.insert(key, render()?)),
        }
    }
}

impl fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries();
        f.debug_struct("RenderCache")
            .field("entries", &entries.by_key.len())
            .field("bytes", &entries.bytes)
            .field("budget", &self.budget)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn upper(key: &str) -> Result<String, Infallible> {
        Ok(key.to_uppercase())
    }

    #[test]
    fn a_key_renders_once_and_a_failed_render_keeps_nothing() {
        let cache = RenderCache::new(1 << 20);
        let first = cache.get_or_render("abc", || upper("abc")).unwrap();
        assert_eq!(&*first, "ABC");
        let again = cache
            .get_or_render("abc", || -> Result<String, Infallible> {
                panic!("a hit renders nothing")
            })
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(
            cache.get_or_render("bad", || Err::<String, _>("no")),
            Err("no")
        );
        assert!(cache.get("bad").is_none());
        assert_eq!(cache.entries().bytes, "abc".len() + "ABC".len());
    }

    #[test]
    fn the_cache_keeps_within_its_budget_dropping_the_least_recently_used() {
        let size = "a".len() + "A".len();
        let cache = RenderCache::new(3 * size);
        let a = cache.get_or_render("a", || upper("a")).unwrap();
        let b = cache.get_or_render("b", || upper("b")).unwrap();
        cache.get_or_render("c", || upper("c")).unwrap();
        assert!(Arc::ptr_eq(&a, &cache.get("a").unwrap()), "a read again");
        cache.get_or_render("d", || upper("d")).unwrap(); // over budget: b goes
        let entries = cache.entries();
        assert_eq!(entries.bytes, 3 * size);
        assert!(!entries.by_key.contains_key("b"));
        for kept in ["a", "c", "d"] {
            assert!(entries.by_key.contains_key(kept), "{kept}");
        }
        drop(entries);
        let b_again = cache.get_or_render("b", || upper("b")).unwrap();
        assert!(!Arc::ptr_eq(&b, &b_again), "b rendered again");
    }

    #[test]
    fn an_entry_larger_than_the_budget_is_not_kept() {
        let cache = RenderCache::new(16);
        let long = "a key longer than the budget";
        assert_eq!(
            &*cache.get_or_render(long, || upper(long)).unwrap(),
            long.to_uppercase()
        );
        assert_eq!(cache.entries().bytes, 0);
        assert_eq!(cache.entries().by_key.len(), 0);
    }
}

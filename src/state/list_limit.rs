//! The longest batch each provider host takes, as `batch_size = "auto"` found it: remembered so
//! the next run starts there instead of finding it again.
//!
//! Contract: [`StateStore::list_limit`] reads what [`StateStore::set_list_limit`] last wrote for
//! a host (`None` when nothing was). The value sits in the `meta` tree under
//! `list_limit@HOST`, postcard-encoded, beside the format's own keys: older versions ignore
//! keys they do not know, the database's rewrite copies every tree, and MANIFEST records only
//! answers, so the format (`phone-enrich-state/4`) is unchanged. It is a hint, not an answer:
//! an unreadable value reads as nothing remembered, and a repaired store forgets it (the next
//! run tries longer batches again).

use serde::{Deserialize, Serialize};

use super::{StateError, StateStore};

/// What a run learned of the longest batch a host takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListLimit {
    /// The longest batch the provider answered.
    pub taken: usize,
    /// The shortest batch it refused for its length, if one was.
    pub refused: Option<usize>,
}

fn key(host: &str) -> String {
    format!("list_limit@{host}")
}

impl StateStore {
    /// The longest batch `host` took, as last remembered.
    pub fn list_limit(&self, host: &str) -> Result<Option<ListLimit>, StateError> {
        let failed = |e| StateError::sled(&self.dir, format!("reading {}", key(host)), e);
        let meta = self.db.open_tree("meta").map_err(failed)?;
        let value = meta.get(key(host)).map_err(failed)?;
        Ok(value.and_then(|v| postcard::from_bytes(&v).ok()))
    }

    /// Remembers the longest batch `host` took, flushed before this returns.
    pub fn set_list_limit(&self, host: &str, limit: ListLimit) -> Result<(), StateError> {
        let failed = |e| StateError::sled(&self.dir, format!("writing {}", key(host)), e);
        let value = postcard::to_stdvec(&limit).expect("two numbers always encode");
        let meta = self.db.open_tree("meta").map_err(failed)?;
        meta.insert(key(host), value).map_err(failed)?;
        self.db.flush().map_err(failed)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosts_list_limit_is_remembered_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let limit = ListLimit {
            taken: 250,
            refused: Some(262),
        };
        {
            let store = StateStore::open(dir.path()).unwrap();
            assert_eq!(store.list_limit("smsc.ru").unwrap(), None);
            store.set_list_limit("smsc.ru", limit).unwrap();
        }
        // sled's flusher lets go of the database a moment after the handle is dropped.
        let store = (0..100)
            .find_map(|_| {
                let opened = StateStore::open(dir.path()).ok();
                if opened.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened
            })
            .expect("the store opens again");
        assert_eq!(store.list_limit("smsc.ru").unwrap(), Some(limit));
        assert_eq!(store.list_limit("sandbox").unwrap(), None);
    }
}

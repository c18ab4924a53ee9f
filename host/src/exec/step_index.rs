//! Finds a step by its key without storing the key twice: the table holds only step ids and
//! hashes the keys where the steps keep them. At a million clones this saves a copy of every
//! key path (about 100 bytes a step). Keys come from guests, so the hasher is std's keyed
//! SipHash, not a fast unkeyed one.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::step_key::StepKey;

#[derive(Debug, Default)]
pub(super) struct StepIndex {
    table: HashTable<usize>,
    hasher: RandomState,
}

impl StepIndex {
    /// The id of the step with `key`; `key_of` gives the key of a step id.
    pub(super) fn get<'k>(
        &self,
        key: &StepKey,
        key_of: impl Fn(usize) -> &'k StepKey,
    ) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |&id| key_of(id) == key).copied()
    }

    /// Records step `id`, whose key is `key`, which no other step has.
    pub(super) fn insert<'k>(
        &mut self,
        key: &StepKey,
        id: usize,
        key_of: impl Fn(usize) -> &'k StepKey,
    ) {
        let hasher = &self.hasher;
        self.table
            .insert_unique(hasher.hash_one(key), id, |&other| {
                hasher.hash_one(key_of(other))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_it_was_given_and_no_other() {
        let keys: Vec<StepKey> = (0..5000)
            .map(|i| StepKey::new(i % 3, vec![format!("k{i}"), "x".into()]))
            .collect();
        let mut index = StepIndex::default();
        for (id, key) in keys.iter().enumerate() {
            index.insert(key, id, |other| &keys[other]);
        }
        for (id, key) in keys.iter().enumerate() {
            assert_eq!(index.get(key, |other| &keys[other]), Some(id));
        }
        let absent = StepKey::new(0, vec!["k1".into(), "x".into()]);
        assert_eq!(index.get(&absent, |other| &keys[other]), None);
    }
}

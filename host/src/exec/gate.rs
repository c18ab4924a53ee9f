//! Concurrency pools at run time (tag concurrency limits, an op's `max_concurrent`: see
//! [`crate::plan::Pools`]): a step starts only with a place in each pool of its op. A ready
//! step without one is held aside, per op, so that the steps queued behind it still start (no
//! head-of-line blocking); held steps go first once their pools have room.
//!
//! A place is a semaphore permit shared by the step's task and the scheduler: a step paused by
//! backpressure gives its places back (the clones it waits for may need them) and waits for
//! them again before it goes on, ahead of steps not started yet. The scheduler frees them when
//! it records the attempt's end, so that the event log never shows more steps of a pool running
//! than it allows, and a retry waiting out its delay holds none.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::plan::Pools;

/// The pools of a run and the ready steps held back for them.
pub(super) struct Gate {
    /// Per op: the semaphores of its pools, in the plan's order.
    pools_of: Vec<Arc<[Arc<Semaphore>]>>,
    /// Per op: its ready steps that found no place, oldest first.
    held: Vec<VecDeque<usize>>,
    /// The ops with held steps.
    holding: BTreeSet<usize>,
    held_count: usize,
}

impl Gate {
    pub(super) fn new(pools: &Pools) -> Gate {
        let semaphores: Vec<Arc<Semaphore>> = pools
            .sizes
            .iter()
            .map(|&size| Arc::new(Semaphore::new(size)))
            .collect();
        Gate {
            pools_of: pools
                .of_node
                .iter()
                .map(|of| of.iter().map(|&pool| semaphores[pool].clone()).collect())
                .collect(),
            held: vec![VecDeque::new(); pools.of_node.len()],
            holding: BTreeSet::new(),
            held_count: 0,
        }
    }

    /// Ready steps held back for a place.
    pub(super) fn held(&self) -> usize {
        self.held_count
    }

    /// The next step to start and its places (`None` for an op in no pool): a held step whose
    /// pools have room now, else the first step of `ready` that has room; the steps of `ready`
    /// before it are held. `node_of` gives a step's op.
    pub(super) fn next(
        &mut self,
        ready: &mut VecDeque<usize>,
        node_of: impl Fn(usize) -> usize,
    ) -> Option<(usize, Option<Places>)> {
        let free = self
            .holding
            .iter()
            .find_map(|&node| Some((node, self.places(node)?)));
        if let Some((node, places)) = free {
            let step = self.held[node]
                .pop_front()
                .expect("a holding op holds a step");
            if self.held[node].is_empty() {
                self.holding.remove(&node);
            }
            self.held_count -= 1;
            return Some((step, Some(places)));
        }
        while let Some(step) = ready.pop_front() {
            let node = node_of(step);
            if self.pools_of[node].is_empty() {
                return Some((step, None));
            }
            // An op already holding steps had no room a moment ago, and its steps keep order.
            if !self.holding.contains(&node)
                && let Some(places) = self.places(node)
            {
                return Some((step, Some(places)));
            }
            self.held[node].push_back(step);
            self.holding.insert(node);
            self.held_count += 1;
        }
        None
    }

    /// A place in every pool of op `node` if each has one free now, else none taken.
    fn places(&self, node: usize) -> Option<Places> {
        let pools = &self.pools_of[node];
        let mut permits = Vec::with_capacity(pools.len());
        for pool in pools.iter() {
            // Fails too while a paused step waits for this pool: it goes first.
            permits.push(pool.clone().try_acquire_owned().ok()?);
        }
        Some(Places {
            pools: pools.clone(),
            held: Arc::new(Mutex::new(permits)),
        })
    }
}

/// The places a running step holds in its op's pools (cheap to clone: every clone is the
/// step's).
#[derive(Clone)]
pub(super) struct Places {
    pools: Arc<[Arc<Semaphore>]>,
    held: Arc<Mutex<Vec<OwnedSemaphorePermit>>>,
}

impl Places {
    /// Frees the step's places, for other steps to start in.
    pub(super) fn give_back(&self) {
        let permits = std::mem::take(&mut *self.held.lock().expect("step places"));
        drop(permits);
    }

    /// Waits for a place in each pool again, in the plan's order (as every step takes them, so
    /// that two steps cannot each wait for the other's).
    pub(super) async fn take(&self) {
        for pool in self.pools.iter() {
            // The gate never closes a pool.
            if let Ok(permit) = pool.clone().acquire_owned().await {
                self.held.lock().expect("step places").push(permit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(sizes: Vec<usize>, of_node: Vec<Vec<usize>>) -> Gate {
        Gate::new(&Pools { sizes, of_node })
    }

    /// Steps are numbered so that step `s` is of op `s / 10`.
    fn next(gate: &mut Gate, ready: &mut VecDeque<usize>) -> Option<(usize, Option<Places>)> {
        gate.next(ready, |step| step / 10)
    }

    #[test]
    fn a_full_pool_holds_its_steps_and_not_those_behind_them() {
        // Op 0 in a pool of 1; op 1 in none.
        let mut gate = gate(vec![1], vec![vec![0], vec![]]);
        let mut ready = VecDeque::from([0, 1, 2, 10, 11]);
        let (first, places) = next(&mut gate, &mut ready).unwrap();
        assert_eq!(first, 0);
        assert_eq!(next(&mut gate, &mut ready).unwrap().0, 10);
        assert_eq!(next(&mut gate, &mut ready).unwrap().0, 11);
        assert!(next(&mut gate, &mut ready).is_none());
        assert_eq!(gate.held(), 2);
        // Held steps start, in order, as places free up.
        places.unwrap().give_back();
        let (second, places) = next(&mut gate, &mut ready).unwrap();
        assert_eq!(second, 1);
        assert!(next(&mut gate, &mut ready).is_none());
        drop(places);
        assert_eq!(next(&mut gate, &mut ready).unwrap().0, 2);
        assert_eq!(gate.held(), 0);
    }

    #[test]
    fn a_step_takes_a_place_in_every_pool_or_in_none() {
        // Op 0 in pools 0 and 1, op 1 in pool 1 only, each of one place.
        let mut gate = gate(vec![1, 1], vec![vec![0, 1], vec![1]]);
        let mut ready = VecDeque::from([10, 0]);
        let (step, _op1) = next(&mut gate, &mut ready).unwrap();
        assert_eq!(step, 10);
        // Op 0 finds pool 0 free but pool 1 full: it must not keep the place in pool 0.
        assert!(next(&mut gate, &mut ready).is_none());
        assert_eq!(
            gate.pools_of[0][0].available_permits(),
            1,
            "pool 0 was left free"
        );
    }

    #[tokio::test]
    async fn a_paused_step_gives_its_places_back_and_waits_for_them_first() {
        let mut gate = gate(vec![1], vec![vec![0]]);
        let mut ready = VecDeque::from([0, 1]);
        let (_, places) = next(&mut gate, &mut ready).unwrap();
        let places = places.unwrap();
        places.give_back();
        let (_, taken) = next(&mut gate, &mut ready).unwrap();
        // The paused step waits while another holds the place...
        let resumed = tokio::spawn({
            let places = places.clone();
            async move { places.take().await }
        });
        tokio::task::yield_now().await;
        assert!(!resumed.is_finished());
        // ...and has it before any step not started yet can take it.
        drop(taken);
        ready.push_back(2);
        assert!(next(&mut gate, &mut ready).is_none());
        resumed.await.unwrap();
        places.give_back();
        assert_eq!(next(&mut gate, &mut ready).unwrap().0, 2);
    }
}

//! A fair share of step slots among the tenants of a server: every step of every run passes
//! this gate before it executes, so that one tenant's 100,000-clone fan-out cannot starve
//! another tenant's ten-step job.
//!
//! A slot goes to a tenant running fewer steps than its cap. When slots are freed and several
//! tenants wait, they are handed out round robin over the tenants that wait and are under
//! their cap (deficit round robin with a quantum of one step, equal weights), first come first
//! served within a tenant.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// The step slots of a server, shared by all its runs (cheap to clone).
#[derive(Clone)]
pub struct Share(Arc<Mutex<State>>);

/// A tenant's handle on a [`Share`] (cheap to clone).
#[derive(Debug, Clone)]
pub struct TenantShare {
    share: Share,
    tenant: usize,
}

/// One step slot of a tenant, given back when dropped.
pub struct Slot {
    /// `None` once the slot was counted back by hand: see [`Share::hand_out`].
    share: Option<Share>,
    tenant: usize,
}

/// How a share is used, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareStats {
    pub total: usize,
    pub free: usize,
    /// In the order the tenants were registered.
    pub tenants: Vec<TenantStats>,
}

/// One tenant's part of [`ShareStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantStats {
    pub name: String,
    pub cap: usize,
    /// Slots held.
    pub running: usize,
    /// `acquire`s waiting for a slot.
    pub waiting: usize,
}

struct State {
    total: usize,
    free: usize,
    tenants: Vec<Tenant>,
    /// The tenants with waiters, next turn first: a tenant that gets a slot goes to the back.
    turns: VecDeque<usize>,
}

struct Tenant {
    name: String,
    cap: usize,
    running: usize,
    /// Oldest first. The waiter of a dropped `acquire` stays until its turn comes.
    waiters: VecDeque<oneshot::Sender<Slot>>,
}

impl Share {
    /// A share of `total_slots` steps at once; none runs while it is 0.
    pub fn new(total_slots: usize) -> Share {
        Share(Arc::new(Mutex::new(State {
            total: total_slots,
            free: total_slots,
            tenants: Vec::new(),
            turns: VecDeque::new(),
        })))
    }

    /// Registers tenant `name`, or changes its cap: it runs at most `cap` steps at once (none
    /// while `cap` is 0). A lowered cap takes no slot back; it holds new steps back until the
    /// tenant is under it.
    pub fn tenant(&self, name: &str, cap: usize) -> TenantShare {
        let mut state = self.lock();
        let tenant = match state.tenants.iter().position(|t| t.name == name) {
            Some(tenant) => {
                state.tenants[tenant].cap = cap;
                // A raised cap may let waiters in.
                self.hand_out(&mut state);
                tenant
            }
            None => {
                state.tenants.push(Tenant {
                    name: name.to_string(),
                    cap,
                    running: 0,
                    waiters: VecDeque::new(),
                });
                state.tenants.len() - 1
            }
        };
        TenantShare {
            share: self.clone(),
            tenant,
        }
    }

    /// Slots free and held, and waiters, now.
    pub fn stats(&self) -> ShareStats {
        let state = self.lock();
        let tenants = state
            .tenants
            .iter()
            .map(|t| TenantStats {
                name: t.name.clone(),
                cap: t.cap,
                running: t.running,
                waiting: t.waiters.iter().filter(|w| !w.is_closed()).count(),
            })
            .collect();
        ShareStats {
            total: state.total,
            free: state.free,
            tenants,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().expect("share")
    }

    /// Grants free slots to waiters, a tenant's turn at a time, until no slot is free or no
    /// tenant with waiters is under its cap. Called after every change that may allow a grant,
    /// so that a slot is never free while a tenant under its cap waits.
    fn hand_out(&self, state: &mut State) {
        // Tenants at their cap passed over since the last grant: once all were, none can take.
        let mut passed = 0;
        while state.free > 0 && passed < state.turns.len() {
            let tenant = state.turns[0];
            let waiting = &mut state.tenants[tenant];
            if waiting.running >= waiting.cap {
                state.turns.rotate_left(1);
                passed += 1;
                continue;
            }
            let waiter = waiting.waiters.pop_front().expect("a tenant in turn waits");
            let emptied = waiting.waiters.is_empty();
            state.free -= 1;
            waiting.running += 1;
            let slot = Slot {
                share: Some(self.clone()),
                tenant,
            };
            let granted = match waiter.send(slot) {
                Ok(()) => true,
                // The `acquire` was dropped: count the slot back here, as dropping it would
                // lock the share again. The tenant keeps its turn.
                Err(mut slot) => {
                    slot.share = None;
                    state.free += 1;
                    waiting.running -= 1;
                    false
                }
            };
            if granted {
                passed = 0;
            }
            if emptied {
                state.turns.pop_front();
            } else if granted {
                state.turns.rotate_left(1);
            }
        }
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share").finish_non_exhaustive()
    }
}

impl TenantShare {
    /// Waits for a slot of this tenant. Cancel-safe: dropped while waiting, or after a slot was
    /// handed to it but before it returned, it leaves no slot taken.
    pub async fn acquire(&self) -> Slot {
        let granted = {
            let mut state = self.share.lock();
            let state = &mut *state;
            let tenant = &mut state.tenants[self.tenant];
            // Nobody of this tenant waits then: `hand_out` would have granted them this slot.
            if state.free > 0 && tenant.running < tenant.cap {
                state.free -= 1;
                tenant.running += 1;
                return Slot {
                    share: Some(self.share.clone()),
                    tenant: self.tenant,
                };
            }
            let (waiter, granted) = oneshot::channel();
            if tenant.waiters.is_empty() {
                state.turns.push_back(self.tenant);
            }
            tenant.waiters.push_back(waiter);
            granted
        };
        // The share keeps every waiter until it sends it a slot.
        granted.await.expect("a waiter is granted a slot")
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(share) = self.share.take() {
            let mut state = share.lock();
            state.free += 1;
            state.tenants[self.tenant].running -= 1;
            share.hand_out(&mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use super::*;

    type Acquire = Pin<Box<dyn Future<Output = Slot> + Send>>;

    fn acquire(tenant: &TenantShare) -> Acquire {
        let tenant = tenant.clone();
        Box::pin(async move { tenant.acquire().await })
    }

    /// Polls `acquire` once: the slot if it was granted.
    fn poll(acquire: &mut Acquire) -> Option<Slot> {
        match acquire
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(slot) => Some(slot),
            Poll::Pending => None,
        }
    }

    /// `n` acquires of `tenant`, each polled once so that they queue in order.
    fn queue(tenant: &TenantShare, n: usize) -> Vec<Acquire> {
        (0..n)
            .map(|_| {
                let mut waiting = acquire(tenant);
                assert!(poll(&mut waiting).is_none(), "no slot is free");
                waiting
            })
            .collect()
    }

    fn usage(share: &Share, tenant: usize) -> (usize, usize) {
        let stats = &share.stats().tenants[tenant];
        (stats.running, stats.waiting)
    }

    #[tokio::test]
    async fn a_tenant_never_runs_more_than_its_cap() {
        let share = Share::new(4);
        let a = share.tenant("a", 2);
        let first = a.acquire().await;
        let _second = a.acquire().await;
        let mut third = queue(&a, 1).remove(0);
        assert_eq!(share.stats().free, 2);
        drop(first);
        let _third = poll(&mut third).expect("a slot under the cap");
        assert_eq!(usage(&share, 0), (2, 0));
    }

    #[tokio::test]
    async fn all_tenants_together_never_run_more_than_the_total() {
        let share = Share::new(2);
        let (a, b) = (share.tenant("a", 5), share.tenant("b", 5));
        let first = a.acquire().await;
        let _second = a.acquire().await;
        let mut waiting = queue(&b, 1).remove(0);
        drop(first);
        let _b = poll(&mut waiting).expect("the freed slot");
        assert_eq!(share.stats().free, 0);
    }

    #[tokio::test]
    async fn a_raised_cap_lets_waiters_in() {
        let share = Share::new(2);
        let a = share.tenant("a", 1);
        let _first = a.acquire().await;
        let mut waiting = queue(&a, 1).remove(0);
        share.tenant("a", 2);
        assert!(poll(&mut waiting).is_some());
    }

    #[tokio::test]
    async fn freed_slots_alternate_between_waiting_tenants_first_come_first_served() {
        // A's 100-step fan-out queued first cannot hold B's 10 steps back.
        let share = Share::new(1);
        let (a, b) = (share.tenant("a", 1), share.tenant("b", 1));
        let mut held = a.acquire().await;
        let mut waiting: Vec<(&str, usize, Acquire)> = Vec::new();
        for (name, tenant, n) in [("a", &a, 100), ("b", &b, 10)] {
            let queued = queue(tenant, n).into_iter().enumerate();
            waiting.extend(queued.map(|(i, acquire)| (name, i, acquire)));
        }
        let mut grants = Vec::new();
        while !waiting.is_empty() {
            drop(held);
            let mut granted = waiting
                .iter_mut()
                .enumerate()
                .filter_map(|(i, (_, _, acquire))| Some((i, poll(acquire)?)));
            let (granted_to, slot) = granted.next().expect("the freed slot is granted");
            assert!(granted.next().is_none(), "one slot is freed at a time");
            held = slot;
            let (name, i, _) = waiting.remove(granted_to);
            grants.push((name, i));
        }
        let first: Vec<(&str, usize)> = (0..10).flat_map(|i| [("a", i), ("b", i)]).collect();
        assert_eq!(grants[..20], first);
        let rest: Vec<(&str, usize)> = (10..100).map(|i| ("a", i)).collect();
        assert_eq!(grants[20..], rest);
    }

    #[tokio::test]
    async fn a_dropped_waiter_takes_no_slot() {
        let share = Share::new(1);
        let a = share.tenant("a", 1);
        let held = a.acquire().await;
        let mut waiting = queue(&a, 2);
        let mut second = waiting.pop().unwrap();
        drop(waiting);
        assert_eq!(usage(&share, 0), (1, 1));
        drop(held);
        let slot = poll(&mut second).expect("the slot skips the dropped waiter");
        drop(slot);
        assert_eq!(share.stats().free, 1);
    }

    #[tokio::test]
    async fn a_slot_handed_to_a_waiter_dropped_before_it_looked_is_given_back() {
        let share = Share::new(1);
        let (a, b) = (share.tenant("a", 1), share.tenant("b", 1));
        let held = a.acquire().await;
        let granted = queue(&b, 1);
        let mut next = queue(&a, 1).remove(0);
        // B's waiter is sent the slot, and dropped before it takes it.
        drop(held);
        assert_eq!(usage(&share, 1), (1, 0));
        drop(granted);
        let slot = poll(&mut next).expect("the slot B's waiter never took");
        drop(slot);
        assert_eq!(share.stats().free, 1);
        assert_eq!(usage(&share, 1), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aborted_tasks_leave_every_slot_free() {
        let share = Share::new(3);
        let tenants = [share.tenant("a", 2), share.tenant("b", 3)];
        let tasks: Vec<_> = (0..400)
            .map(|i| {
                let tenant = tenants[i % 2].clone();
                tokio::spawn(async move {
                    let _slot = tenant.acquire().await;
                    tokio::time::sleep(Duration::from_micros(200)).await;
                })
            })
            .collect();
        for (i, task) in tasks.iter().enumerate() {
            if i % 3 == 0 {
                task.abort();
            }
            tokio::task::yield_now().await;
        }
        for task in tasks {
            let _finished_or_aborted = task.await;
        }
        let stats = share.stats();
        assert_eq!(stats.free, 3);
        for tenant in stats.tenants {
            assert_eq!((tenant.running, tenant.waiting), (0, 0), "{}", tenant.name);
        }
    }

    #[tokio::test]
    async fn stats_count_slots_held_and_waiters_per_tenant() {
        let share = Share::new(3);
        let (a, b) = (share.tenant("a", 1), share.tenant("b", 2));
        let _a = a.acquire().await;
        let _b = b.acquire().await;
        let _waiting = queue(&a, 2);
        assert_eq!(
            share.stats(),
            ShareStats {
                total: 3,
                free: 1,
                tenants: vec![
                    TenantStats {
                        name: "a".into(),
                        cap: 1,
                        running: 1,
                        waiting: 2,
                    },
                    TenantStats {
                        name: "b".into(),
                        cap: 2,
                        running: 1,
                        waiting: 0,
                    },
                ],
            }
        );
    }
}

//! A step's memory budget: all linear memories of its instance together, unlike wasmtime's
//! `StoreLimits`, which bounds each memory on its own.

use wasmtime::ResourceLimiter;

/// Table elements one table may grow to; tables hold function references, and Rust guests
/// use a few hundred.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Tracks the memory a step's instance uses and refuses growth past its limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: u64,
    /// Set when a growth was refused; the step's trap is then reported as the memory limit.
    pub exceeded: bool,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Self {
        MemoryBudget {
            limit,
            used: 0,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = (self.used + desired as u64).saturating_sub(current as u64);
        if next > self.limit {
            self.exceeded = true;
            // An error traps the guest at once, with a clear cause, where `Ok(false)` would make
            // `memory.grow` return -1 and a Rust guest abort with an opaque `unreachable`.
            wasmtime::bail!("memory limit of {} bytes exceeded", self.limit);
        }
        self.used = next;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_all_memories_together() {
        let mut budget = MemoryBudget::new(100);
        assert!(budget.memory_growing(0, 60, None).unwrap());
        assert!(budget.memory_growing(0, 30, None).unwrap());
        // The first memory grows from 60 to 70: 100 in all, still allowed.
        assert!(budget.memory_growing(60, 70, None).unwrap());
        assert!(!budget.exceeded);
        assert!(budget.memory_growing(30, 31, None).is_err());
        assert!(budget.exceeded);
    }
}

//! The host process's own peak memory, reported at the end of every run so that a guest's
//! attempt to exhaust the host shows up in numbers.

/// Peak resident set size of this process in bytes (`VmHWM`), where the OS reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_a_plausible_peak_on_linux() {
        let peak = super::peak_rss_bytes().expect("linux reports VmHWM");
        assert!(peak > 1 << 20 && peak < 1 << 40, "{peak}");
    }
}

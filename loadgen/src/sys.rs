//! The operating system side: sampling a local process from `/proc/<pid>` (resident memory and
//! CPU seconds) and raising this process's open-files limit for big fleets.

use std::path::PathBuf;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// One reading of a process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcSample {
    /// Resident set size in bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// User + system CPU time in seconds.
    pub cpu_s: f64,
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Clone, Debug)]
pub struct ProcSampler {
    dir: PathBuf,
    ticks_per_s: f64,
}

impl ProcSampler {
    /// A sampler of process `pid`.
    pub fn new(pid: u32) -> Self {
        Self {
            dir: PathBuf::from(format!("/proc/{pid}")),
            ticks_per_s: rustix::param::clock_ticks_per_second() as f64,
        }
    }

    /// The current reading, or `None` if the process is gone or unreadable.
    pub fn sample(&self) -> Option<ProcSample> {
        let status = std::fs::read_to_string(self.dir.join("status")).ok()?;
        let stat = std::fs::read_to_string(self.dir.join("stat")).ok()?;
        let ticks = cpu_ticks(&stat)?;
        Some(ProcSample {
            rss_bytes: rss_bytes(&status)?,
            cpu_s: ticks as f64 / self.ticks_per_s,
        })
    }
}

/// `VmRSS:   1234 kB` → bytes.
fn rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// utime + stime (fields 14 and 15) of `/proc/<pid>/stat`; the command name in parentheses
/// may contain spaces, so fields are counted after the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The hard open-files limit of this process (what its soft limit can be raised to).
pub fn nofile_hard_limit() -> u64 {
    getrlimit(Resource::Nofile).maximum.unwrap_or(u64::MAX)
}

/// Raises the soft open-files limit to `want` (capped by the hard limit, raised too when the
/// process may). Returns the limit in effect afterwards.
pub fn raise_nofile_limit(want: u64) -> u64 {
    let cur = getrlimit(Resource::Nofile);
    let soft = cur.current.unwrap_or(u64::MAX);
    if soft >= want {
        return soft;
    }
    let wanted = Rlimit {
        current: Some(want),
        maximum: Some(cur.maximum.map_or(want, |m| m.max(want))),
    };
    if setrlimit(Resource::Nofile, wanted).is_ok() {
        return want;
    }
    let capped = cur.maximum.map_or(want, |m| m.min(want));
    let fallback = Rlimit {
        current: Some(capped),
        maximum: cur.maximum,
    };
    match setrlimit(Resource::Nofile, fallback) {
        Ok(()) => capped,
        Err(_) => soft,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t    2048 kB\nThreads: 3\n";
        assert_eq!(rss_bytes(status), Some(2 * 1024 * 1024));
        let stat = "42 (a b) S 1 42 42 0 -1 4194304 100 0 0 0 150 50 0 0 20 0 3 0";
        assert_eq!(cpu_ticks(stat), Some(200));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn samples_this_process() {
        let s = ProcSampler::new(std::process::id()).sample().unwrap();
        assert!(s.rss_bytes > 0);
        assert!(s.cpu_s >= 0.0);
        assert_eq!(ProcSampler::new(u32::MAX).sample(), None);
    }
}

//! Keeps a single-threaded encode on one CPU (opt-in, VORA_ENCODE_PIN=1 in the worker; the
//! scaling benchmark pins its two encodes). Two chunk encodes in one process, left to the
//! scheduler, ran 1.78x as fast as one on a 2-core host; each pinned to its own CPU, 1.85-1.92x:
//! a thread that stays put keeps its caches warm (x264's reference frames, the decoder's state).

/// Pins the calling thread to the `index`-th CPU (modulo their count) of those this thread may
/// run on, so a cpuset or `taskset` limit is respected. Returns the CPU, or None where pinning is
/// unsupported or refused (the encode then runs unpinned; nothing else depends on it).
#[cfg(target_os = "linux")]
pub fn pin_current_thread(index: u32) -> Option<usize> {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is plain data; both calls only read/write the set we pass, for this thread.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return None;
        }
        #[allow(clippy::cast_sign_loss)]
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &allowed)).collect();
        let cpu = *cpus.get(usize::try_from(index).ok()? % cpus.len().max(1))?;
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        (libc::sched_setaffinity(0, size, &one) == 0).then_some(cpu)
    }
}

#[cfg(not(target_os = "linux"))]
pub fn pin_current_thread(_index: u32) -> Option<usize> {
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn pins_a_thread_to_one_allowed_cpu() {
        let got = std::thread::spawn(|| {
            let cpu = pin_current_thread(1).unwrap();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            // SAFETY: as above, reading this thread's own mask.
            let n = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                assert_eq!(libc::sched_getaffinity(0, size, &mut set), 0);
                libc::CPU_COUNT(&set)
            };
            (cpu, n)
        })
        .join()
        .unwrap();
        assert_eq!(got.1, 1, "exactly one CPU left in the mask");
        assert!(got.0 < libc::CPU_SETSIZE as usize);
    }
}

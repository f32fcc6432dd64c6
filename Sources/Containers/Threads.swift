#if canImport(Glibc)
    import Glibc
#endif

/// Starts a pthread running `body` (which owns what it captures until it returns).
/// - Returns: the thread, or nil when `pthread_create` failed.
func startThread(_ body: @escaping () -> Void) -> pthread_t? {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(
        &thread, nil,
        { raw in
            guard let raw else { return nil }
            Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue().run()
            return nil
        }, context)
    if rc != 0 {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        return nil
    }
    return thread
}

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Runs `first` on a new thread and `second` on this one, and returns when both are done (both
/// at once on this thread when no thread can be started). For independent slow steps, e.g. the
/// kernel's work of removing a container's cgroups and its files, which then overlap.
///
/// The thread is detached and signals a semaphore when `first` returns: joining it would also
/// wait for glibc to release its stack and for the kernel to end it (0.3-0.4 ms on this host).
func concurrently(_ first: @escaping () -> Void, _ second: () -> Void) {
    let done = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    sem_init(done, 0, 0)
    defer {
        sem_destroy(done)
        done.deallocate()
    }
    guard
        let thread = startThread({
            first()
            sem_post(done)
        })
    else {
        first()
        second()
        return
    }
    pthread_detach(thread)
    second()
    while sem_wait(done) != 0 {}  // EINTR: again
}

/// Runs each of `bodies` on a thread of its own and returns when all are done; a body whose
/// thread cannot be started runs on this one. For waits that should overlap, such as stopping
/// several containers (each waits up to its stop timeout).
public func allAtOnce(_ bodies: [() -> Void]) {
    var threads: [pthread_t] = []
    for body in bodies {
        if let thread = startThread(body) { threads.append(thread) } else { body() }
    }
    for thread in threads { pthread_join(thread, nil) }
}

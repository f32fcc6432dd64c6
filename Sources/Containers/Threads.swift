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
func concurrently(_ first: @escaping () -> Void, _ second: () -> Void) {
    guard let thread = startThread(first) else {
        first()
        second()
        return
    }
    second()
    pthread_join(thread, nil)
}

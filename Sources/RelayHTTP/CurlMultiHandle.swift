import CCurl

/// Owns the `CURLM *` that runs every transfer of one client and keeps its connection cache.
///
/// `@unchecked Sendable` because the reference crosses threads, but the handle does not: every
/// call except ``wakeup()`` happens on the loop thread, and `curl_multi_wakeup` is documented as
/// callable from any thread. ``CurlMultiLoop`` only calls `wakeup()` under its mailbox lock while
/// the loop has not yet stopped, so it never races with `curl_multi_cleanup`.
final class CurlMultiHandle: @unchecked Sendable {
    private let raw: UnsafeMutableRawPointer

    init(maxConnectionsPerHost: Int, maxCachedConnections: Int) {
        guard let raw = curl_multi_init() else {
            fatalError("curl_multi_init returned NULL (out of memory)")
        }
        self.raw = raw
        // Beyond this, curl queues transfers until a connection to that host is free, instead of
        // opening an unbounded number of sockets to one upstream.
        _ = ccurl_multi_setopt_long(raw, CURLMOPT_MAX_HOST_CONNECTIONS, maxConnectionsPerHost)
        // curl's default cache size follows the number of easy handles currently added, so after
        // a burst it would close most keep-alive connections just as the handles are removed.
        _ = ccurl_multi_setopt_long(raw, CURLMOPT_MAXCONNECTS, maxCachedConnections)
    }

    deinit {
        curl_multi_cleanup(self.raw)
    }

    func add(_ easy: CurlEasyHandle) -> CURLMcode {
        curl_multi_add_handle(self.raw, easy.raw)
    }

    func remove(_ easy: CurlEasyHandle) {
        _ = curl_multi_remove_handle(self.raw, easy.raw)
    }

    func perform() -> CURLMcode {
        var running: Int32 = 0
        return curl_multi_perform(self.raw, &running)
    }

    /// Blocks the loop thread until a socket is ready, curl's next timer is due, `wakeup()` is
    /// called, or `timeoutMilliseconds` pass.
    func poll(timeoutMilliseconds: Int32) -> CURLMcode {
        curl_multi_poll(self.raw, nil, 0, timeoutMilliseconds, nil)
    }

    func wakeup() {
        _ = curl_multi_wakeup(self.raw)
    }

    /// The next finished transfer, if any: the easy handle's pointer and its result.
    func nextCompleted() -> (easy: UnsafeMutableRawPointer, result: CURLcode)? {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(self.raw, &remaining) {
            // Read the fields now: the message is invalid once its handle is removed.
            if message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle {
                return (easy, message.pointee.data.result)
            }
        }
        return nil
    }
}

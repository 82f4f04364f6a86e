import Foundation
import RelayCore

/// Where this machine's CPU went over an interval: the broker's Erlang VM, this process (relay,
/// simulated platform and CRM, load generator), and nobody. Read from /proc, so Linux only; elsewhere
/// every figure is nil and nothing is printed.
struct CPUShares {
    /// Cores' worth of CPU each used over the interval.
    var broker: Double
    var benchProcess: Double
    var idle: Double

    var description: String {
        String(format: "CPU: broker %.2f cores, this process %.2f, idle %.2f", broker, benchProcess, idle)
    }

    /// A reading to subtract a later one from.
    struct Mark {
        fileprivate var at: ContinuousClock.Instant
        fileprivate var brokerTicks: Int
        fileprivate var ownTicks: Int
        fileprivate var idleTicks: Int
    }

    static func mark() -> Mark? {
        guard let own = processTicks(pid: "self"), let idle = idleTicks() else { return nil }
        return Mark(
            at: .now,
            brokerTicks: brokerPids().compactMap(processTicks).reduce(0, +),
            ownTicks: own,
            idleTicks: idle
        )
    }

    static func since(_ start: Mark?) -> CPUShares? {
        guard let start, let end = mark() else { return nil }
        let seconds = (end.at - start.at).totalSeconds
        guard seconds > 0 else { return nil }
        // /proc counts in clock ticks, USER_HZ: 100 per second on Linux.
        func cores(_ ticks: Int) -> Double { Double(ticks) / 100 / seconds }
        return CPUShares(
            broker: cores(end.brokerTicks - start.brokerTicks),
            benchProcess: cores(end.ownTicks - start.ownTicks),
            idle: cores(end.idleTicks - start.idleTicks)
        )
    }

    /// utime + stime of a process, fields 14 and 15 of /proc/PID/stat (after the parenthesised name).
    static func processTicks(pid: String) -> Int? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let nameEnd = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: nameEnd)...].split(separator: " ")
        // After the name, field 3 (state) is at index 0: utime (14) and stime (15) at 11 and 12.
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }

    /// idle + iowait from the machine's line of /proc/stat.
    private static func idleTicks() -> Int? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = stat.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { Int($0) }
        guard fields.count > 4 else { return nil }
        return fields[3] + fields[4]
    }

    /// Every running Erlang VM: on a benchmark machine, the broker.
    private static func brokerPids() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { entry in
            entry.allSatisfy(\.isNumber)
                && (try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8))?.hasPrefix("beam") == true
        }
    }
}

/// One child process's own use: CPU time and its peak resident set, read from /proc.
enum ProcessUse {
    /// CPU time so far, user and system, in seconds.
    static func cpuSeconds(pid: Int32) -> Double? {
        CPUShares.processTicks(pid: String(pid)).map { Double($0) / 100 }
    }

    /// The peak resident set (VmHWM) in bytes.
    static func peakResidentBytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kilobytes * 1024
    }

    /// CPU time so far of every PostgreSQL server process (the postmaster, its backends and workers):
    /// on a benchmark machine, the server the relay uses.
    static func postgresServerCPUSeconds() -> Double? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let ticks = entries.filter { entry in
            entry.allSatisfy(\.isNumber)
                && (try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8))?.hasPrefix("postgres") == true
        }.compactMap { CPUShares.processTicks(pid: $0) }
        return ticks.isEmpty ? nil : Double(ticks.reduce(0, +)) / 100
    }
}

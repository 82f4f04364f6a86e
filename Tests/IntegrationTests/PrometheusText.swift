import Foundation
import RelayTesting
import Testing

/// The metrics text read by Prometheus's own parser (the official Python client's, Debian's
/// python3-prometheus-client): a text it cannot read fails the test, whatever our own code thinks.
struct PrometheusText {
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    let samples: [Sample]

    static let script = """
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        out = []
        for family in text_string_to_metric_families(sys.stdin.read()):
            for s in family.samples:
                out.append({"name": s.name, "labels": s.labels, "value": s.value})
        print(json.dumps(out))
        """

    static func parse(_ text: String) throws -> PrometheusText {
        let process = ChildProcess()
        // Debian's interpreter, where the apt package puts the parser (a PATH python may be another one).
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script]
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(
            process.terminationStatus == 0,
            "the Prometheus parser refused the metrics text: \(String(decoding: errorData, as: UTF8.self))"
        )
        let parsed = try #require(try JSONSerialization.jsonObject(with: outputData) as? [[String: Any]])
        return PrometheusText(
            samples: parsed.map {
                Sample(
                    name: $0["name"] as? String ?? "",
                    labels: $0["labels"] as? [String: String] ?? [:],
                    value: ($0["value"] as? NSNumber)?.doubleValue ?? .nan
                )
            }
        )
    }

    /// The value of the one sample with this name and exactly these labels; nil when there is none.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }
}

// swift-tools-version:6.1
import PackageDescription

// Every target gets the same strictness: Swift 6 language mode plus the upcoming features
// that keep existentials and imports explicit.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "identity-relay",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "identity-relay", targets: ["identity-relay"]),
        .executable(name: "relay-bench", targets: ["relay-bench"]),
        .executable(name: "relay-fault", targets: ["relay-fault"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // The relay parses its YAML itself (see RelayConfiguration+ConfigReader.swift): no format traits.
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: []),
        // OTLP over HTTP only: the gRPC exporter would add grpc-swift to every build.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C libraries from Debian, reached through module maps and a shim of typed wrappers.
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),

        // Google's libphonenumber (C++) behind a C function: parsing, not I/O.
        .target(
            name: "CPhoneNumber",
            linkerSettings: [.linkedLibrary("phonenumber")]
        ),

        // Every decision, no I/O.
        .target(
            name: "RelayCore",
            dependencies: ["CPhoneNumber", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),

        // The one way the adapters start an OS thread of their own.
        .target(name: "RelayThread", swiftSettings: strictSettings),

        // Adapters: one per outside system.
        .target(
            name: "RelayAMQP",
            dependencies: [
                "CRabbitMQ", "RelayCore", "RelayThread",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "RelayHTTP",
            dependencies: [
                "CCurl", "RelayThread",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),

        .target(
            name: "RelayStore",
            dependencies: [
                "RelayCore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),

        // The store on PostgreSQL, for several relays on one database: behind RelayStore's protocols.
        .target(
            name: "RelayPostgres",
            dependencies: [
                "RelayStore", "RelayCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),

        // The simulated platform and CRM that the embedded default and the demo run against.
        .target(
            name: "RelaySimulator",
            dependencies: [
                "RelayCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),

        // Configuration and the wiring of the adapters around the core.
        .target(
            name: "RelayService",
            dependencies: [
                "RelayCore", "RelayAMQP", "RelayHTTP", "RelayStore", "RelayPostgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),

        // The operators' HTTP API: health, readiness, Prometheus metrics, dead letters, the CTI lookup.
        .target(
            name: "RelayAdmin",
            dependencies: [
                "RelayService", "RelayCore", "RelayAMQP", "RelayStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),

        .executableTarget(
            name: "identity-relay",
            dependencies: [
                "RelayService", "RelayAdmin", "RelaySimulator", "RelayAMQP", "RelayCore", "RelayHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "relay-bench",
            dependencies: [
                "RelayService", "RelayAdmin", "RelaySimulator", "RelayAMQP", "RelayCore", "RelayHTTP", "RelayStore",
                "RelayPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks/relay-bench",
            swiftSettings: strictSettings
        ),

        .executableTarget(
            name: "relay-fault",
            dependencies: [
                "RelayAMQP", "RelayCore", "RelaySimulator", "RelayStore", "RelayPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tools/relay-fault",
            swiftSettings: strictSettings
        ),

        // posix_spawn with closefrom and chdir, for the tests' child processes (see ChildProcess).
        .target(name: "CSpawn"),

        // Shared by the tests: the broker they must find, local HTTP servers standing in for
        // systems we do not own.
        .target(
            name: "RelayTesting",
            dependencies: [
                "RelayAMQP", "RelayService", "RelayAdmin", "RelaySimulator", "RelayStore", "RelayPostgres", "CSpawn",
                "RelayHTTP",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),

        .testTarget(
            name: "RelayCoreTests",
            dependencies: ["RelayCore"],
            resources: [.copy("Genesys/Fixtures")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RelayStoreTests",
            dependencies: [
                "RelayStore", "RelayCore", "RelayPostgres", "RelayTesting",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RelayServiceTests",
            dependencies: [
                "RelayService", "RelayCore", "RelayAMQP", "RelayTesting",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RelayHTTPTests",
            dependencies: [
                "RelayHTTP", "RelaySimulator", "RelayTesting",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RelayAMQPTests",
            dependencies: ["RelayAMQP", "RelayTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "RelayService", "RelayAdmin", "RelayAMQP", "RelayHTTP", "RelaySimulator", "RelayTesting", "RelayCore",
                "RelayStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),
    ],
    cxxLanguageStandard: .cxx17
)

// swift-tools-version:6.1
// Tapio: a Kubernetes operator and eBPF node agent. See ../README.md and DESIGN (shared) for the map.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "tapio",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tapio", targets: ["tapio"]),
        .executable(name: "tapio-bench", targets: ["tapio-bench"]),
        .executable(name: "tapio-emulator", targets: ["tapio-emulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // MARK: Model — pure value types shared by everything (no I/O).
        .target(
            name: "TapioModel",
            swiftSettings: strict
        ),

        // MARK: Kubernetes client and runtime.
        .target(
            name: "KubeClient",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "KubeRuntime",
            dependencies: [
                "KubeClient",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // MARK: Kernel side.
        .systemLibrary(
            name: "CLibbpf",
            path: "Sources/CLibbpf",
            pkgConfig: "libbpf",
            providers: [.apt(["libbpf-dev", "libelf-dev", "zlib1g-dev"])]
        ),
        // glibc's heap statistics (mallinfo2, malloc_info): <malloc.h> is not in Swift's Glibc module.
        .target(
            name: "CProcessHeap",
            path: "Sources/CProcessHeap"
        ),
        .target(
            name: "CTapioBPF",
            dependencies: ["CLibbpf"],
            path: "Sources/CTapioBPF"
        ),
        .target(
            name: "TapioBPF",
            dependencies: [
                "CTapioBPF", "TapioModel",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TapioNode",
            dependencies: [
                "TapioModel",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // MARK: Correlation — pure logic with an injected clock.
        .target(
            name: "TapioCorrelation",
            dependencies: [
                "TapioModel",
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),

        // MARK: Wiring — sinks, the agent's pipeline, the operator.
        .target(
            name: "TapioSinks",
            dependencies: [
                "TapioModel", "TapioCorrelation", "CProcessHeap",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TapioKube",
            dependencies: [
                "TapioModel", "KubeClient",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Insights as custom resources and Events (bounded, newest-wins, retried), and their TTL clean-up: shared
        // by the agent (per-node findings) and the operator (cluster-level findings).
        .target(
            name: "TapioInsightWriter",
            dependencies: [
                "TapioModel", "TapioCorrelation", "TapioNode", "KubeClient", "KubeRuntime", "TapioSinks", "TapioKube",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TapioAgent",
            dependencies: [
                "TapioModel", "TapioCorrelation", "TapioNode", "TapioBPF", "KubeClient", "KubeRuntime", "TapioSinks", "TapioKube",
                "TapioInsightWriter",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TapioOperator",
            dependencies: [
                "TapioModel", "TapioCorrelation", "KubeClient", "KubeRuntime", "TapioSinks", "TapioKube", "TapioInsightWriter",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // MARK: The CLI.
        .executableTarget(
            name: "tapio",
            dependencies: [
                "TapioModel", "TapioCorrelation", "TapioNode", "TapioBPF", "KubeClient", "KubeRuntime",
                "TapioSinks", "TapioKube", "TapioAgent", "TapioOperator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),

        // The test API server on its own, for the README's walkthrough with kubectl (test support, not shipped).
        .executableTarget(
            name: "tapio-emulator",
            dependencies: ["KubeEmulator"],
            swiftSettings: strict
        ),

        // MARK: Benchmarks — a separate executable, never part of `swift test`.
        .executableTarget(
            name: "tapio-bench",
            dependencies: [
                "TapioModel", "TapioCorrelation", "TapioNode", "TapioBPF", "KubeClient", "KubeRuntime",
                "KubeEmulator", "TapioAgent", "TapioKube", "TapioInsightWriter", "TapioTestSupport", "TapioSinks", "TapioOperator",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/tapio-bench",
            swiftSettings: strict
        ),

        // MARK: Test support.
        .target(
            name: "KubeEmulator",
            dependencies: [
                "TapioModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TapioTestSupport",
            dependencies: ["KubeClient", "KubeEmulator", "TapioModel"],
            swiftSettings: strict
        ),
        // Swift Testing traits: a target of its own, so that tapio-bench (which uses TapioTestSupport) does not link Testing.
        .target(
            name: "TapioTestTraits",
            dependencies: [],
            swiftSettings: strict
        ),

        // MARK: Tests (Swift Testing).
        .testTarget(
            name: "TapioModelTests",
            dependencies: ["TapioModel", "TapioKube", "KubeClient", "KubeEmulator", "TapioTestSupport", "TapioTestTraits",
                           .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KubeClientTests",
            dependencies: [
                "KubeClient", "KubeRuntime", "KubeEmulator", "TapioTestSupport", "TapioTestTraits", "TapioModel",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TapioBPFTests",
            dependencies: ["TapioBPF", "TapioNode", "TapioTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TapioNodeTests",
            dependencies: ["TapioNode", "TapioTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TapioCorrelationTests",
            dependencies: ["TapioCorrelation", "TapioTestSupport", "TapioTestTraits"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TapioAgentTests",
            dependencies: [
                "TapioAgent", "TapioOperator", "TapioSinks", "TapioKube", "KubeClient", "KubeRuntime", "KubeEmulator",
                "TapioTestSupport", "TapioModel", "TapioCorrelation", "TapioInsightWriter",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TapioCLITests",
            dependencies: ["TapioTestSupport", "KubeClient", "TapioKube", "KubeEmulator", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
    ]
)

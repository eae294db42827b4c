import Foundation
import KubeClient
import TapioKube
import TapioModel
import Yams

/// Benchmarks for reading policies; see Harness.swift.
let policyBenchmarks: [Benchmark] = [
    Benchmark(name: "policy.decode", summary: "a --policy file of 256 KiB, 512 KiB and 1 MiB (matchLabels), and the old YAMLDecoder path") {
        func document(keys: Int) -> String {
            var s = "apiVersion: tapio.io/v1alpha1\nkind: TapioPolicy\nmetadata: {name: big}\nspec:\n  selector:\n    podSelector:\n      matchLabels:\n"
            for i in 0..<keys { s += "        app.example.com/key-\(i): value-\(i)\n" }
            return s
        }
        var out: [Measurement] = []
        // About 48 bytes a key: 5,460 keys are 256 KiB.
        for (label, keys) in [("256KiB", 5_460), ("512KiB", 10_920), ("1MiB", 21_845)] {
            let text = document(keys: keys)
            var best = UInt64.max
            for _ in 0..<3 {
                let start = nowNanos()
                do { _ = try PolicyManifest.load(text: text, file: "bench.yaml") } catch { blackHole(error) }
                best = min(best, nowNanos() - start)
            }
            out.append(Measurement(metric: "load \(label) (\(text.utf8.count) bytes)", value: Double(best) / 1e6, unit: "ms"))
            out.append(Measurement(metric: "load \(label) per KiB", value: Double(best) / 1e3 / Double(text.utf8.count / 1024), unit: "µs/KiB"))
        }
        // The API server's JSON of the same 1 MiB selector, as agents and the operator decode it.
        let labels = Dictionary(uniqueKeysWithValues: (0..<21_845).map { ("app.example.com/key-\($0)", "value-\($0)") })
        let json = try JSONSerialization.data(withJSONObject: ["metadata": ["name": "big"],
                                                               "spec": ["selector": ["podSelector": ["matchLabels": labels]]]])
        let start = nowNanos()
        blackHole(TapioPolicyValidation.decodeAndValidate(json: json))
        out.append(Measurement(metric: "decode and validate JSON (\(json.count) bytes)", value: Double(nowNanos() - start) / 1e6, unit: "ms"))
        // The path replaced in issue 16: Yams' YAMLDecoder looks keys up linearly (quadratic in the key count).
        for keys in [1_000, 2_000, 4_000] {
            let text = document(keys: keys)
            let s = nowNanos()
            blackHole(try? YAMLDecoder().decode(TapioPolicy.self, from: text))
            out.append(Measurement(metric: "old YAMLDecoder path, \(keys) keys", value: Double(nowNanos() - s) / 1e6, unit: "ms"))
        }
        return out
    },
]
